#!/usr/bin/env python3
"""openapi_docs.py -- the API contract at build time.

Reads proto/openapi.yaml, checks that every $ref in it resolves inside the
document (the served spec must stand alone), and writes

  --json FILE   the same document as JSON           (served as GET /openapi.json)
  --html FILE   a self-contained HTML reference    (served as GET /docs):
                no JavaScript, no external resources, printable.

    scripts/openapi_docs.py proto/openapi.yaml --json out.json --html out.html

python3 standard library plus python3-yaml (Debian). services/api/CMakeLists.txt
runs it at build time; tests/integration/test_contract.py imports load_spec()
so the tests read the YAML exactly as the build does.
"""

import argparse
import html
import json
import os
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover - a missing build dependency
    sys.exit("openapi_docs.py: python3-yaml is missing (apt-get install python3-yaml)")

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


# --------------------------------------------------------------------------- loading

class _SpecLoader(yaml.SafeLoader):
    """YAML restricted to the JSON data model.

    YAML 1.1 would turn 2024-05-01 into a date and `on`/`yes` into booleans;
    neither exists in JSON, so timestamps stay strings and only true/false are
    booleans. Duplicate keys are an error (PyYAML silently keeps the last one),
    and every mapping key becomes a string (response codes are written 200:).
    """


_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_BOOL = "tag:yaml.org,2002:bool"
_BOOL_RX = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, _BOOL_RX if tag == _BOOL else rx) for tag, rx in resolvers
            if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader, node, deep=False):
    loader.flatten_mapping(node)
    out = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        key = key if isinstance(key, str) else str(key).lower() if isinstance(key, bool) else str(key)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_SpecLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_spec(path):
    """The spec as JSON-compatible Python data; raises ValueError on a broken $ref."""
    with open(path, encoding="utf-8") as f:
        spec = yaml.load(f, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader subclass
    check_refs(spec)
    return spec


def resolve_pointer(doc, ref):
    """The value at a local reference "#/a/b~1c"."""
    if not ref.startswith("#"):
        raise ValueError(f"only local references are allowed: {ref}")
    node = doc
    for token in [t for t in ref[1:].split("/")][1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise ValueError(f"unresolved reference {ref}")
    return node


def check_refs(spec):
    def walk(node, where):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                try:
                    resolve_pointer(spec, ref)
                except (ValueError, IndexError) as e:
                    raise ValueError(f"{where}: {e}") from None
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")
    walk(spec, "#")


def deref(spec, node):
    """Follows $ref chains (one object may be a reference to a reference)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        node = resolve_pointer(spec, node["$ref"])
        seen += 1
        if seen > 20:
            raise ValueError("reference loop")
    return node


def operations(spec):
    """(path, method, operation) for every operation, in document order."""
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


# --------------------------------------------------------------------------- markdown

def _inline(text):
    """A small inline Markdown: `code`, **bold**, *emphasis*, [text](url); text is escaped."""
    out, pos = [], 0
    for m in re.finditer(r"`([^`]+)`", text):
        out.append(_inline_plain(text[pos:m.start()]))
        out.append(f"<code>{html.escape(m.group(1))}</code>")
        pos = m.end()
    out.append(_inline_plain(text[pos:]))
    return "".join(out)


def _inline_plain(text):
    s = html.escape(text, quote=False)
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    s = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", s)

    def link(m):
        href = m.group(2)
        if not re.match(r"^(https?://|#|/)", href):
            return m.group(0)
        return f'<a href="{html.escape(href)}">{m.group(1)}</a>'
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", link, s)


def markdown(text):
    """Block Markdown subset: paragraphs, '- ' lists, '| |' tables, '#' headings, fences."""
    if not text:
        return ""
    lines = text.strip("\n").split("\n")
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append("<pre>" + html.escape("\n".join(lines[i + 1:j])) + "</pre>")
            i = j + 1
            continue
        m = re.match(r"^(#{1,4})\s+(.*)$", line)
        if m:
            level = min(len(m.group(1)) + 3, 6)
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
            i += 1
            continue
        if line.lstrip().startswith("|"):
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.match(r"^:?-+:?$", c) for c in cells):
                    rows.append(cells)
                i += 1
            head, body = rows[0], rows[1:]
            t = ["<table><thead><tr>"] + [f"<th>{_inline(c)}</th>" for c in head]
            t.append("</tr></thead><tbody>")
            for r in body:
                t.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>")
            t.append("</tbody></table>")
            out.append("".join(t))
            continue
        if re.match(r"^\s*[-*] ", line):
            items = []
            while i < len(lines) and (re.match(r"^\s*[-*] ", lines[i]) or
                                      (lines[i].startswith("  ") and lines[i].strip() and items)):
                if re.match(r"^\s*[-*] ", lines[i]):
                    items.append(re.sub(r"^\s*[-*] ", "", lines[i]))
                else:
                    items[-1] += " " + lines[i].strip()
                i += 1
            out.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in items) + "</ul>")
            continue
        para = []
        while (i < len(lines) and lines[i].strip() and not lines[i].lstrip().startswith("|")
               and not re.match(r"^\s*[-*] ", lines[i]) and not lines[i].startswith("```")
               and not re.match(r"^#{1,4}\s", lines[i])):
            para.append(lines[i].strip())
            i += 1
        out.append("<p>" + _inline(" ".join(para)) + "</p>")
    return "\n".join(out)


# --------------------------------------------------------------------------- HTML

CSS = """
:root { --fg: #1d1d1f; --muted: #5a5a66; --line: #d8d8e0; --bg2: #f5f6f8; --accent: #0b5394; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 72rem; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.9rem; margin: .2rem 0 .4rem; }
h2 { font-size: 1.45rem; margin-top: 2.6rem; border-bottom: 2px solid var(--line); padding-bottom: .2rem; }
h3 { font-size: 1.15rem; margin: 2rem 0 .4rem; }
h4 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
h5, h6 { font-size: .95rem; margin: 1rem 0 .3rem; }
a { color: var(--accent); }
code, pre { font-family: ui-monospace, "SF Mono", Menlo, Consolas, monospace; font-size: .86em; }
code { background: var(--bg2); padding: 0 .25em; border-radius: 3px; }
pre { background: var(--bg2); padding: .7rem .9rem; overflow-x: auto; border-radius: 4px;
      white-space: pre-wrap; word-break: break-word; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: var(--bg2); font-weight: 600; }
td.name { white-space: nowrap; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .86em; }
.muted { color: var(--muted); }
.op { border: 1px solid var(--line); border-radius: 6px; padding: .2rem 1.1rem 1rem; margin: 1.4rem 0;
      page-break-inside: avoid; }
.op h3 { margin-top: .8rem; }
.method { display: inline-block; min-width: 4.2em; text-align: center; font-weight: 700;
          border-radius: 4px; padding: 0 .4em; margin-right: .4em; color: #fff; background: #555; }
.get { background: #1f6f43; } .post { background: #0b5394; } .patch { background: #8a5a00; }
.put { background: #6a3d9a; } .delete { background: #a61c1c; }
.path { font-family: ui-monospace, Menlo, Consolas, monospace; }
.badge { font-size: .8em; border: 1px solid var(--line); border-radius: 3px; padding: 0 .35em;
         margin-left: .3em; color: var(--muted); }
nav.toc { columns: 2 22rem; background: var(--bg2); padding: .6rem 1.2rem; border-radius: 6px; }
nav.toc ul { margin: .2rem 0 .6rem; padding-left: 1.1rem; }
nav.toc h4 { margin: .4rem 0 .1rem; break-after: avoid; }
.schema { border-left: 3px solid var(--line); padding-left: 1rem; margin: 1.2rem 0; page-break-inside: avoid; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  a { color: inherit; text-decoration: none; }
  .op, .schema { break-inside: avoid; }
  h2 { break-before: page; }
  h2.first { break-before: avoid; }
  .method { color: #000; background: none; border: 1px solid #000; }
}
"""


def _example_text(value):
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2)


def _esc(s):
    return html.escape(str(s), quote=True)


def _anchor(*parts):
    return re.sub(r"[^A-Za-z0-9_-]+", "-", "-".join(parts)).strip("-")


class Renderer:
    def __init__(self, spec):
        self.spec = spec
        self.schemas = spec.get("components", {}).get("schemas", {})

    # -- schemas ------------------------------------------------------------
    def ref_name(self, node):
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            return node["$ref"].rsplit("/", 1)[1]
        return None

    def type_html(self, s):
        """A short type description, with links to named schemas."""
        if not isinstance(s, dict):
            return "any"
        name = self.ref_name(s)
        if name:
            return f'<a href="#schema-{_anchor(name)}">{_esc(name)}</a>'
        for key, word in (("oneOf", "one of"), ("anyOf", "any of")):
            if key in s:
                parts = [self.type_html(x) for x in s[key]]
                if len(parts) == 2 and "null" in parts:  # the usual "X or null"
                    return f"{[p for p in parts if p != 'null'][0]} | null"
                return f"{word}: " + " | ".join(parts)
        if "allOf" in s:
            names = [self.type_html(x) for x in s["allOf"] if self.ref_name(x)]
            base = " + ".join(names) if names else "object"
            return base
        if "const" in s:
            return f"<code>{_esc(json.dumps(s['const'], ensure_ascii=False))}</code>"
        t = s.get("type")
        types = t if isinstance(t, list) else [t] if t else []
        words = []
        for ty in types:
            if ty == "array":
                words.append("array of " + self.type_html(s.get("items", {})))
            elif ty == "string" and s.get("format"):
                words.append(f"string ({_esc(s['format'])})")
            elif ty:
                words.append(_esc(ty))
        if not words and "enum" in s:
            words.append("enum")
        return " | ".join(words) or "any"

    def constraints(self, s):
        """Constraints as a list of short HTML fragments."""
        if not isinstance(s, dict):
            return []
        c = []
        if self.ref_name(s):
            return c
        codelist = s.get("x-kqe-codelist")
        if "enum" in s:
            vals = ", ".join(f"<code>{_esc(json.dumps(v, ensure_ascii=False).strip(chr(34)))}</code>"
                             for v in s["enum"])
            c.append(f"one of {vals}")
        if codelist:
            c.append(f'labels: <code>GET /v1/codelists/{_esc(codelist)}</code>')
        for key, text in (("minLength", "min. length {}"), ("maxLength", "max. length {}"),
                          ("minimum", "≥ {}"), ("maximum", "≤ {}"),
                          ("exclusiveMinimum", "> {}"), ("exclusiveMaximum", "< {}"),
                          ("minItems", "min. {} items"), ("maxItems", "max. {} items"),
                          ("minProperties", "min. {} members"),
                          ("maxProperties", "max. {} members")):
            if key in s:
                c.append(_esc(text.format(s[key])))
        if s.get("uniqueItems"):
            c.append("distinct items")
        if "pattern" in s:
            c.append(f"pattern <code>{_esc(s['pattern'])}</code>")
        if "default" in s:
            c.append(f"default <code>{_esc(json.dumps(s['default'], ensure_ascii=False))}</code>")
        items = s.get("items")
        if isinstance(items, dict):
            target = deref(self.spec, items)
            inner = self.constraints(target) if "enum" in target or not self.ref_name(items) else []
            if inner:
                c.append("each item: " + "; ".join(inner))
        return c

    def object_members(self, s, seen=None):
        """(properties, required, additional) of an object schema, allOf merged."""
        seen = seen or set()
        props, required, additional = {}, set(), None
        name = self.ref_name(s)
        if name:
            if name in seen:
                return props, required, additional
            seen = seen | {name}
            s = deref(self.spec, s)
        if not isinstance(s, dict):
            return props, required, additional
        for part in s.get("allOf", []):
            p, r, a = self.object_members(part, seen)
            props.update(p)
            required |= r
            additional = a if a is not None else additional
        props.update(s.get("properties", {}))
        required |= set(s.get("required", []))
        if "additionalProperties" in s:
            additional = s["additionalProperties"]
        if s.get("unevaluatedProperties") is False and additional is None:
            additional = False
        return props, required, additional

    def fields_table(self, s, depth=0, prefix=""):
        props, required, additional = self.object_members(s)
        if not props and additional in (None, True, False):
            return ""
        rows = []
        self._field_rows(props, required, additional, prefix, rows, depth)
        return ("<table><thead><tr><th>field</th><th>type</th><th>required</th>"
                "<th>description</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")

    def _field_rows(self, props, required, additional, prefix, rows, depth):
        for name, ps in props.items():
            full = f"{prefix}{name}"
            desc = ps.get("description", "") if isinstance(ps, dict) else ""
            cons = self.constraints(ps)
            target = deref(self.spec, ps) if self.ref_name(ps) else None
            if isinstance(target, dict) and "properties" not in target and "allOf" not in target:
                # A named scalar or enum (Sex, Month, …): its values and rules, for print.
                cons = self.constraints(target)
                desc = desc or target.get("description", "")
            extra = ("<br><span class='muted'>" + "; ".join(cons) + "</span>") if cons else ""
            rows.append(f"<tr><td class='name'>{_esc(full)}</td><td>{self.type_html(ps)}</td>"
                        f"<td>{'yes' if name in required else ''}</td>"
                        f"<td>{_inline(desc)}{extra}</td></tr>")
            # Inline objects (not named schemas) are expanded in place.
            if isinstance(ps, dict) and not self.ref_name(ps) and depth < 4:
                target = ps
                if target.get("type") == "array" and isinstance(target.get("items"), dict) \
                        and not self.ref_name(target["items"]):
                    target, sub = target["items"], f"{full}[]."
                else:
                    sub = f"{full}."
                if "properties" in target or "allOf" in target:
                    p, r, a = self.object_members(target)
                    self._field_rows(p, r, a, sub, rows, depth + 1)
        if isinstance(additional, dict):
            rows.append(f"<tr><td class='name'>{_esc(prefix)}<em>other keys</em></td>"
                        f"<td>{self.type_html(additional)}</td><td></td>"
                        f"<td>{_inline(additional.get('description', ''))}"
                        f"{'<br><span class=muted>' + '; '.join(self.constraints(additional)) + '</span>' if self.constraints(additional) else ''}"
                        f"</td></tr>")

    def schema_block(self, name, s):
        out = [f'<div class="schema" id="schema-{_anchor(name)}"><h3>{_esc(name)}</h3>']
        if s.get("description"):
            out.append(markdown(s["description"]))
        kind = self.type_html(s) if ("oneOf" in s or "anyOf" in s) else None
        if kind:
            out.append(f"<p>{kind}</p>")
        cons = self.constraints(s)
        if s.get("type") in ("string", "integer", "number", "boolean") or "enum" in s:
            out.append(f"<p>{self.type_html(s)}" + (": " + "; ".join(cons) if cons else "") + "</p>")
        table = self.fields_table(s)
        if table:
            out.append(table)
            _, _, additional = self.object_members(s)
            if additional is False:
                out.append("<p class='muted'>No other members (additionalProperties: false).</p>")
        if s.get("type") == "array":
            out.append(f"<p>{self.type_html(s)}" + (": " + "; ".join(cons) if cons else "") + "</p>")
        out.append("</div>")
        return "\n".join(out)

    # -- operations -----------------------------------------------------------
    def params_table(self, params):
        if not params:
            return ""
        rows = []
        for p in params:
            p = deref(self.spec, p)
            s = p.get("schema", {})
            cons = self.constraints(deref(self.spec, s) if self.ref_name(s) else s)
            rows.append(
                f"<tr><td class='name'>{_esc(p['name'])}</td><td>{_esc(p['in'])}</td>"
                f"<td>{self.type_html(s)}</td><td>{'yes' if p.get('required') else ''}</td>"
                f"<td>{markdown(p.get('description', ''))}"
                f"{'<span class=muted>' + '; '.join(cons) + '</span>' if cons else ''}</td></tr>")
        return ("<h4>Parameter</h4><table><thead><tr><th>name</th><th>in</th><th>type</th>"
                "<th>required</th><th>description</th></tr></thead><tbody>" + "".join(rows)
                + "</tbody></table>")

    def examples_html(self, media):
        out = []
        if "example" in media:
            out.append(("example", media["example"]))
        for name, ex in media.get("examples", {}).items():
            ex = deref(self.spec, ex)
            if "value" in ex:
                out.append((ex.get("summary", name), ex["value"]))
        return "".join(
            f"<p class='muted'>Beispiel / example: {_inline(title)}</p><pre>"
            f"{html.escape(_example_text(value), quote=False)}</pre>"
            for title, value in out)

    def operation(self, path, method, op, path_params):
        anchor = _anchor("op", op.get("operationId", f"{method}-{path}"))
        out = [f'<div class="op" id="{anchor}"><h3><span class="method {method}">'
               f"{method.upper()}</span><span class='path'>{_esc(path)}</span></h3>"]
        if op.get("summary"):
            out.append(f"<p><strong>{_inline(op['summary'])}</strong>"
                       f" <span class='badge'>{_esc(op.get('operationId', ''))}</span></p>")
        if op.get("description"):
            out.append(markdown(op["description"]))
        roles = op.get("x-kqe-roles")
        perm = op.get("x-kqe-permission")
        if op.get("security") == []:
            out.append("<p><strong>Zugang / access:</strong> public, no token.</p>")
        elif perm:
            out.append(f"<p><strong>Berechtigung / permission:</strong> <code>{_esc(perm)}</code>"
                       f" — roles: {', '.join(f'<code>{_esc(r)}</code>' for r in roles or [])}</p>")
        params = list(path_params) + list(op.get("parameters", []))
        out.append(self.params_table(params))
        body = op.get("requestBody")
        if body:
            body = deref(self.spec, body)
            out.append("<h4>Request body</h4>")
            if body.get("description"):
                out.append(markdown(body["description"]))
            for ctype, media in body.get("content", {}).items():
                out.append(f"<p><code>{_esc(ctype)}</code>: {self.type_html(media.get('schema', {}))}</p>")
                out.append(self.examples_html(media))
        out.append("<h4>Antworten / responses</h4><table><thead><tr><th>status</th>"
                   "<th>description</th><th>content</th><th>headers</th></tr></thead><tbody>")
        examples = []
        for status, resp in op.get("responses", {}).items():
            resp = deref(self.spec, resp)
            content = "<br>".join(
                f"<code>{_esc(ct)}</code> {self.type_html(m.get('schema', {}))}"
                for ct, m in resp.get("content", {}).items()) or "<span class='muted'>none</span>"
            headers = ", ".join(f"<code>{_esc(h)}</code>" for h in resp.get("headers", {}))
            out.append(f"<tr><td><strong>{_esc(status)}</strong></td>"
                       f"<td>{markdown(resp.get('description', ''))}</td><td>{content}</td>"
                       f"<td>{headers}</td></tr>")
            for ct, m in resp.get("content", {}).items():
                ex = self.examples_html(m)
                if ex and str(status).startswith("2"):
                    examples.append(f"<p class='muted'>{_esc(status)} <code>{_esc(ct)}</code></p>{ex}")
        out.append("</tbody></table>")
        out.extend(examples)
        out.append("</div>")
        return "\n".join(out)

    def render(self):
        spec = self.spec
        info = spec.get("info", {})
        title = info.get("title", "API")
        tags = spec.get("tags", [])
        by_tag = {t["name"]: [] for t in tags}
        for path, method, op in operations(spec):
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((path, method, op))
        tag_desc = {t["name"]: t.get("description", "") for t in tags}

        toc = ['<nav class="toc">']
        for tag, ops in by_tag.items():
            if not ops:
                continue
            toc.append(f'<h4><a href="#tag-{_anchor(tag)}">{_esc(tag)}</a></h4><ul>')
            for path, method, op in ops:
                anchor = _anchor("op", op.get("operationId", f"{method}-{path}"))
                toc.append(f'<li><a href="#{anchor}"><strong>{method.upper()}</strong> '
                           f"{_esc(path)}</a></li>")
            toc.append("</ul>")
        toc.append('<h4><a href="#router">Jeder Pfad / every path</a></h4>')
        toc.append('<h4><a href="#schemas">Schemas</a></h4></nav>')

        body = [f"<h1>{_esc(title)}</h1>",
                f"<p class='muted'>Version {_esc(info.get('version', ''))} · OpenAPI "
                f"{_esc(spec.get('openapi', ''))} · generated from <code>proto/openapi.yaml</code>"
                f" · machine-readable: <a href='/openapi.json'>/openapi.json</a></p>"]
        if info.get("summary"):
            body.append(f"<p><strong>{_inline(info['summary'])}</strong></p>")
        body.append("".join(toc))
        body.append('<h2 class="first" id="overview">Überblick / overview</h2>')
        body.append(markdown(info.get("description", "")))
        schemes = spec.get("components", {}).get("securitySchemes", {})
        if schemes:
            body.append("<h3>Authentifizierung / authentication</h3><ul>")
            for name, sch in schemes.items():
                if sch.get("type") == "apiKey":  # e.g. a signed link in the query
                    kind = (f"{_esc(sch.get('in', ''))} parameter "
                            f"<code>{_esc(sch.get('name', ''))}</code>")
                else:
                    kind = (f"{_esc(sch.get('type'))} {_esc(sch.get('scheme', ''))}, "
                            f"{_esc(sch.get('bearerFormat', ''))}")
                body.append(f"<li><strong>{_esc(name)}</strong> ({kind}): "
                            f"{_inline(sch.get('description', ''))}</li>")
            body.append("</ul>")
        servers = spec.get("servers", [])
        if servers:
            body.append("<h3>Server</h3><ul>" + "".join(
                f"<li><code>{_esc(s['url'])}</code> — {_inline(s.get('description', ''))}</li>"
                for s in servers) + "</ul>")

        for tag, ops in by_tag.items():
            if not ops:
                continue
            body.append(f'<h2 id="tag-{_anchor(tag)}">{_esc(tag)}</h2>')
            body.append(markdown(tag_desc.get(tag, "")))
            for path, method, op in ops:
                path_params = spec["paths"][path].get("parameters", [])
                body.append(self.operation(path, method, op, path_params))

        router = spec.get("x-kqe-router-answers")
        body.append('<h2 id="router">Antworten für jeden Pfad / answers on every path</h2>')
        if router:
            body.append(markdown(router.get("description", "")))
            body.append("<table><thead><tr><th>when</th><th>status</th><th>description</th>"
                        "<th>content</th><th>headers</th></tr></thead><tbody>")
            for when, responses in router.items():
                if when == "description":
                    continue
                for status, resp in responses.items():
                    resp = deref(spec, resp)
                    content = "<br>".join(
                        f"<code>{_esc(ct)}</code> {self.type_html(m.get('schema', {}))}"
                        for ct, m in resp.get("content", {}).items()) or "none"
                    headers = ", ".join(f"<code>{_esc(h)}</code>" for h in resp.get("headers", {}))
                    body.append(f"<tr><td><code>{_esc(when)}</code></td><td>{_esc(status)}</td>"
                                f"<td>{markdown(resp.get('description', ''))}</td><td>{content}</td>"
                                f"<td>{headers}</td></tr>")
            body.append("</tbody></table>")

        body.append('<h2 id="schemas">Schemas</h2>')
        for name, s in self.schemas.items():
            body.append(self.schema_block(name, s))

        return ("<!DOCTYPE html>\n<html lang=\"de\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                f"<title>{_esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
                + "\n".join(body) + "\n</body>\n</html>\n")


def render_html(spec):
    return Renderer(spec).render()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("spec", help="proto/openapi.yaml")
    ap.add_argument("--json", help="write the spec as JSON here")
    ap.add_argument("--html", help="write the HTML reference here")
    args = ap.parse_args(argv)
    try:
        spec = load_spec(args.spec)
    except (OSError, ValueError, yaml.YAMLError) as e:
        sys.exit(f"openapi_docs.py: {args.spec}: {e}")
    outputs = []
    if args.json:
        outputs.append((args.json, json.dumps(spec, ensure_ascii=False, separators=(",", ":"))
                        + "\n"))
    if args.html:
        outputs.append((args.html, render_html(spec)))
    for path, text in outputs:
        tmp = path + ".tmp"
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
