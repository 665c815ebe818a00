"""idp layer."""
