# Allow members of "admins"; deny every path under /private, whoever asks.
package gateway

import rego.v1

default allow := false

private if startswith(input.path, "/private")

allow if {
	"admins" in input.principal.claims.groups
	not private
}

reason := "private paths are closed" if private

reason := "admins only" if {
	not private
	not "admins" in input.principal.claims.groups
}
