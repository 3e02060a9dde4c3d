"""import-linter contract types of this project (registered in pyproject.toml, `contract_types`).

`device_side`: the modules pushed to a device (`remote.bundle.device_modules()`, the one list of
them) import only each other, the standard library and the externals the contract allows (torch).
A device has no klmtui installation, so any other import would fail there, possibly only on a rare
path (lazy imports count: grimp sees imports inside functions too).
"""

from __future__ import annotations

import sys

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class DeviceSideContract(Contract):
    """Options: `allowed_external` (top-level packages besides the standard library, e.g. torch)."""

    type_name = "device_side"
    allowed_external = fields.SetField(subfield=fields.StringField(), required=False, default=set())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        from remote.bundle import device_modules

        modules = set(device_modules())
        allowed = set(self.allowed_external) | set(sys.stdlib_module_names) | {"__future__"}  # type: ignore[arg-type]
        missing = sorted(m for m in modules if m not in graph.modules)
        bad = []
        for module in sorted(modules - set(missing)):
            for imported in sorted(graph.find_modules_directly_imported_by(module)):
                if imported in modules or imported.split(".")[0] in allowed:
                    continue
                lines = [d["line_number"] for d in graph.get_import_details(importer=module, imported=imported)]
                bad.append({"importer": module, "imported": imported, "lines": lines})
        return ContractCheck(kept=not bad and not missing, metadata={"bad": bad, "missing": missing})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for module in check.metadata["missing"]:
            output.print_error(f"{module} is listed in remote.bundle but is not in the import graph")
        for item in check.metadata["bad"]:
            where = ", ".join(f"l.{n}" for n in item["lines"]) or "?"
            output.print_error(f"{item['importer']} -> {item['imported']} ({where}): device-side code may import "
                               f"only the bundle, the standard library and {', '.join(sorted(self.allowed_external))}",
                               bold=False)
        output.new_line()
