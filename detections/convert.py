"""Validates the Sigma rules in rules/ and converts them with pySigma's Elasticsearch backend.

Writes converted/<target>/<rule>.<ext> (lucene: query_string for Elasticsearch and OpenSearch; esql: ES|QL,
Elasticsearch 8.11+; eql: EQL, Elasticsearch) and converted/rules.json, the manifest the tests and the
README use (what each rule needs, its correlation, the converted queries).

  python convert.py            # validate + write
  python convert.py --check    # validate + fail when converted/ is not what the rules give (CI)
"""
import json
import re
import sys
from pathlib import Path

from sigma.backends.elasticsearch import EqlBackend, ESQLBackend, LuceneBackend
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule
from sigma.validators.core import validators as core_validators
from sigma.validation import SigmaValidator

HERE = Path(__file__).resolve().parent


def relative(err: object) -> str:
    """An error message with the checkout's absolute path removed (the output must not depend on it)."""
    return str(err).replace(str(HERE.parent) + "/", "")
RULES = HERE / "rules"
OUT = HERE / "converted"
# These two download MITRE data at run time (no network in CI); tags are checked offline below.
OFFLINE_EXCLUDED = {"attacktag", "d3_fendtag"}
TAG_RE = re.compile(r"^attack\.(t\d{4}(\.\d{3})?|[a-z]+(-[a-z]+)*)$")


def load() -> SigmaCollection:
    files = sorted(RULES.glob("*.yml"))
    texts = {f: f.read_text() for f in files}
    # Base rules before correlations, and correlations of correlations last, so references resolve.
    def order(f: Path):
        t = texts[f]
        return ("correlation:" in t, bool(re.search(r"rules:\s*\n\s*- authentik_brute_force_account", t)), f.name)

    return SigmaCollection.load_ruleset(sorted(files, key=order))


def validate(coll: SigmaCollection) -> list[str]:
    problems: list[str] = []
    for rule in coll:
        for e in rule.errors:
            problems.append(f"{rule.source.path.name if rule.source else rule.title}: {e}")
    validators = {k: v for k, v in core_validators.items() if k not in OFFLINE_EXCLUDED}
    validator = SigmaValidator(validators.values())
    for issue in validator.validate_rules(coll):
        names = ", ".join(r.source.path.name if r.source else str(r.title) for r in issue.rules)
        problems.append(f"{names}: {issue}")
    for rule in coll:
        name = rule.source.path.name if rule.source else str(rule.title)
        techniques = [t for t in rule.tags if t.namespace == "attack" and re.match(r"t\d{4}", t.name)]
        if rule.level is None or str(rule.level) not in ("informational", "low", "medium", "high", "critical"):
            problems.append(f"{name}: level missing")
        for t in rule.tags:
            if t.namespace == "attack" and not TAG_RE.match(f"attack.{t.name}"):
                problems.append(f"{name}: malformed ATT&CK tag attack.{t.name}")
        if not techniques and rule.level is not None and str(rule.level) != "informational":
            problems.append(f"{name}: an alerting rule needs an ATT&CK technique tag")
    return problems


def convert(coll: SigmaCollection) -> dict[str, str]:
    pipeline = ProcessingPipeline.from_yaml((HERE / "pipeline.yml").read_text())
    files: dict[str, str] = {}
    manifest = []
    backends = {
        "lucene": (LuceneBackend(pipeline), "lucene"),
        "esql": (ESQLBackend(pipeline), "esql"),
        "eql": (EqlBackend(pipeline), "eql"),
    }
    converted: dict[str, dict[str, str]] = {}
    for rule in coll:
        stem = rule.source.path.stem
        converted[stem] = {}
        for target, (backend, ext) in backends.items():
            try:
                if isinstance(rule, SigmaCorrelationRule):
                    if target == "lucene" or target == "eql":
                        continue  # these backends have no correlation support
                    out = backend.convert_correlation_rule(rule)
                else:
                    out = backend.convert_rule(rule)
            except Exception as e:  # noqa: BLE001 - a backend that cannot express a rule is recorded
                converted[stem][target] = f"# not convertible: {relative(e)}"
                continue
            if out:
                converted[stem][target] = "\n".join(str(q) for q in out)
    # Base rules referenced by correlations are suppressed by the backends; convert them alone too.
    by_name = {r.name: r for r in coll if r.name}
    for rule in coll:
        stem = rule.source.path.stem
        if isinstance(rule, SigmaRule) and rule.name in by_name and "lucene" not in converted[stem]:
            single = SigmaCollection.from_yaml(rule.source.path.read_text())
            for target, (backend, _) in backends.items():
                if target == "esql":
                    b = ESQLBackend(ProcessingPipeline.from_yaml((HERE / "pipeline.yml").read_text()))
                elif target == "lucene":
                    b = LuceneBackend(ProcessingPipeline.from_yaml((HERE / "pipeline.yml").read_text()))
                else:
                    b = EqlBackend(ProcessingPipeline.from_yaml((HERE / "pipeline.yml").read_text()))
                try:
                    q = b.convert(single)
                    if q:
                        converted[stem][target] = "\n".join(str(x) for x in q)
                except Exception as e:  # noqa: BLE001
                    converted[stem][target] = f"# not convertible: {relative(e)}"
    for rule in coll:
        stem = rule.source.path.stem
        entry: dict = {
            "file": f"rules/{rule.source.path.name}",
            "id": str(rule.id),
            "name": rule.name,
            "title": rule.title,
            "level": str(rule.level),
            "tags": [f"{t.namespace}.{t.name}" for t in rule.tags],
            "falsepositives": list(rule.falsepositives or []),
        }
        if isinstance(rule, SigmaCorrelationRule):
            cond = rule.condition
            entry["correlation"] = {
                "type": str(rule.type.name).lower(),
                "rules": [r.reference for r in rule.rules],
                "group_by": list(rule.group_by or []),
                "timespan_seconds": rule.timespan.seconds,
                "condition": {
                    "op": cond.op.name.lower() if cond else None,
                    "count": cond.count if cond else None,
                    "field": cond.fieldref if cond else None,
                },
                "aliases": {
                    a.alias: {str(k.reference): v for k, v in a.mapping.items()} for a in (rule.aliases.aliases.values() if rule.aliases else [])
                },
            }
        else:
            entry["logsource"] = {"product": rule.logsource.product, "service": rule.logsource.service}
            entry["index"] = {"event": "logs-authentik.event-*", "change": "logs-authentik.change-*"}[rule.logsource.service]
        if isinstance(rule, SigmaCorrelationRule) and entry["correlation"]["type"] in ("event_count", "value_count"):
            dsl = count_dsl(entry["correlation"], converted)
            if dsl is not None:
                converted[stem]["dsl"] = json.dumps(dsl, indent=2)
        entry["queries"] = {}
        for q in sorted((HERE / "queries").glob(f"{stem}.*")):
            entry.setdefault("handwritten", {})[q.suffix[1:]] = f"queries/{q.name}"
        for target, text in sorted(converted[stem].items()):
            if text.startswith("# not convertible"):
                entry.setdefault("not_convertible", {})[target] = text[len("# not convertible: ") :]
                continue
            ext = {"lucene": "lucene", "esql": "esql", "eql": "eql", "dsl": "json"}[target]
            path = f"{target}/{stem}.{ext}"
            files[path] = text.rstrip("\n") + "\n"
            entry["queries"][target] = f"converted/{path}"
        manifest.append(entry)
    manifest.sort(key=lambda e: e["file"])
    files["rules.json"] = json.dumps({"generated_by": "detections/convert.py", "rules": manifest}, indent=2) + "\n"
    return files


def count_dsl(corr: dict, converted: dict[str, dict[str, str]]) -> dict | None:
    """Query DSL of an event_count / value_count correlation: the base rules' Lucene queries, the time
    window, a terms aggregation on the group-by field (min_doc_count = the threshold) with the counted
    field's cardinality, and `_trigger`, the condition on each bucket (remove the key before sending the
    body; it is the trigger of an OpenSearch bucket-level monitor or a Kibana threshold rule). Runs on
    OpenSearch and Elasticsearch alike."""
    by_name = {}
    for stem, qs in converted.items():
        by_name[stem] = qs
    bases = []
    for ref in corr["rules"]:
        q = by_name.get(ref, {}).get("lucene")
        if q is None or q.startswith("#"):
            return None
        bases.append(f"({q})")
    if len(corr["group_by"]) != 1:
        return None
    field = corr["group_by"][0]
    op = {"gte": ">=", "gt": ">", "lte": "<=", "lt": "<", "eq": "=="}[corr["condition"]["op"]]
    count = corr["condition"]["count"]
    terms: dict = {"field": field, "size": 1000}
    if corr["condition"]["op"] in ("gte", "gt"):
        # A group needs at least that many events either way; for event_count this is the whole condition.
        terms["min_doc_count"] = count + (1 if corr["condition"]["op"] == "gt" else 0)
    aggs: dict = {}
    if corr["type"] == "value_count":
        aggs["value_count"] = {"cardinality": {"field": corr["condition"]["field"]}}
        terms["order"] = {"value_count": "desc"}
    groups: dict = {"terms": terms}
    if aggs:
        groups["aggs"] = aggs
    return {
        "size": 0,
        "query": {
            "bool": {
                "filter": [
                    {"query_string": {"query": " OR ".join(bases)}},
                    {"range": {"@timestamp": {"gte": f"now-{corr['timespan_seconds']}s"}}},
                ]
            }
        },
        "aggs": {"groups": groups},
        # The alert condition on each bucket of `groups`, in the form of an OpenSearch alerting bucket-level
        # trigger (the query itself is script-free, so it runs on every distribution).
        "_trigger": {
            "parent_bucket_path": "groups",
            "buckets_path": {"n": "value_count" if corr["type"] == "value_count" else "_count"},
            "script": f"params.n {op} {count}",
        },
    }


def main() -> int:
    check = "--check" in sys.argv
    coll = load()
    problems = validate(coll)
    if problems:
        print("Sigma validation failed:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"{len(list(coll))} rules valid (pySigma validators except {', '.join(sorted(OFFLINE_EXCLUDED))}; ATT&CK tags checked offline)")
    files = convert(coll)
    stale = []
    for rel, text in sorted(files.items()):
        p = OUT / rel
        if check:
            if not p.exists() or p.read_text() != text:
                stale.append(rel)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
    if not check:
        wanted = {OUT / r for r in files}
        for p in OUT.rglob("*"):
            if p.is_file() and p not in wanted:
                p.unlink()
        print(f"wrote {len(files)} files under {OUT.relative_to(HERE.parent)}")
    elif stale:
        print("converted/ is stale (run detections/convert.sh):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    else:
        print(f"converted/ is up to date ({len(files)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
