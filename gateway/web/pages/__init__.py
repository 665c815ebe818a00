"""The gateway's own HTML pages: Jinja2 templates, branding, languages, CSP."""
