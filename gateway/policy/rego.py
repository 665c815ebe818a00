"""Route policies written in Rego (OPA), evaluated in-process by `regopy` (optional extra
`oidc-gateway[rego]`). Compiled once at start-up; refused requests say why.

The input is the external authorizer's decision request (gateway/policy/ext_authz.py).
The query (default `data.gateway`) must give `true`/`false`, or an object with a boolean
`allow` and optionally a `reason` string; anything else (undefined included) refuses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError, GatewayError

# Imported with the first Rego policy: the interpreter adds about 11 MiB to every worker.
regopy: Any = None


def _load_regopy() -> Any:
    """The regopy module, or None when the optional extra is not installed."""
    global regopy
    if regopy is None:
        try:
            import regopy as module
        except ImportError:
            return None
        regopy = module
    return regopy


class RegoFailed(GatewayError):
    """500: evaluating a Rego policy raised an error (the request is refused)."""

    code = "rego_error"


class RegoPolicy:
    """One Rego file and its query; one interpreter, re-used with each request's input."""

    def __init__(self, file: str, query: str, where: str) -> None:
        if _load_regopy() is None:
            raise ConfigError([f"{where}: Rego policies need the optional 'regopy' package "
                               "(pip install 'oidc-gateway[rego]')"])  # fmt: skip
        try:
            source = Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([f"{where}.file: cannot read {file}: {exc.strerror}"]) from None
        self.query = query
        self._interpreter = regopy.Interpreter()
        try:
            self._interpreter.add_module(Path(file).name, source)
            probe = self._evaluate({})  # compile now: a broken file stops start-up, not a request
        except regopy.RegoError as exc:
            raise ConfigError([f"{where}: {_error_text(exc)}"]) from None
        except RegoFailed as exc:
            raise ConfigError([f"{where}: {exc}"]) from None
        if '"bindings"' in probe:
            raise ConfigError([f"{where}.query: {query[:200]} assigns variables; "
                               "query a rule instead (e.g. data.gateway.allow)"])  # fmt: skip

    def _evaluate(self, data: dict[str, Any]) -> str:
        try:
            self._interpreter.set_input_term(json.dumps(data, default=str))
            output = self._interpreter.query(self.query)
        except regopy.RegoError as exc:
            raise RegoFailed(_error_text(exc)) from None
        # regopy reports a query that does not parse, or a rule with conflicting values,
        # as a result that is not ok (the details go to stderr), not as an exception; a
        # query that does not parse would otherwise pass start-up and refuse every request
        if not output.ok():
            raise RegoFailed(f"Rego policy error: evaluating {self.query[:200]} failed")
        return str(output)

    def _not_one_value(self) -> tuple[bool, str]:
        return False, f"rego: {self.query} does not give exactly one value"

    def decide(self, data: dict[str, Any]) -> tuple[bool, str]:
        """(allowed, reason) for one decision input."""
        text = self._evaluate(data)
        if text.strip() == "undefined":
            return False, f"rego: {self.query} is undefined for this request"
        try:
            answer = json.loads(text)
        except ValueError:
            return False, "rego: unreadable result"
        if isinstance(answer, list):
            return self._not_one_value()  # one document per result
        if not isinstance(answer, dict):
            return False, "rego: unreadable result"
        expressions = answer.get("expressions") or [None]
        if "bindings" in answer or len(expressions) != 1:
            # `x := false` "succeeds" with x bound; `rule[_]` may give several values, some
            # false: neither is one decision, so neither may allow.
            return self._not_one_value()
        result = expressions[0]
        if isinstance(result, bool):
            return result, f"rego: {self.query} is {str(result).lower()}"
        if isinstance(result, dict) and isinstance(result.get("allow"), bool):
            reason = result.get("reason")
            words = reason[:200] if isinstance(reason, str) else f"allow is {result['allow']}"
            return result["allow"], f"rego: {words}"
        return False, f"rego: {self.query} is neither a boolean nor an object with allow"


def _error_text(exc: Exception) -> str:
    return "Rego policy error: " + " ".join(str(exc).split())[:300]
