"""CLI commands of this area; see design.md section 3. Registered by klmtui.cli via COMMANDS."""

COMMANDS: list = []
