"""The fuzzing campaign's text families (see tests/fuzzing.py): specs, layer strings and CSV layer
tables."""

from __future__ import annotations

import dataclasses

from hypothesis import strategies as st

from fuzz_oracle import case_root, judge, junk_value, must_refuse, run_cli, text, toml_text


# -- family: specs -------------------------------------------------------------------------------
def _spec_fields():
    from gen.spec import _FIELDS
    return _FIELDS


PRESETS = ("ws", "os", "is", "nlr", "rs")


def base_spec(dataflow: str = "ws") -> dict:
    return {"name": "fz", "dataflow": dataflow, "array": {"rows": 4, "cols": 4},
            "precision": {"act_bits": 8, "weight_bits": 8, "acc_bits": 32},
            "buffers": {"input_depth": 512, "weight_depth": 256, "output_depth": 256}}


def field_valid(kind, low, high, value) -> bool:
    """Independent statement of the documented field types and ranges."""
    import keyword
    import re
    if kind is int:
        return type(value) is int and low <= value <= high
    if kind is float:
        return type(value) in (int, float) and low <= value <= high
    if kind is bool:
        return type(value) is bool
    if kind == "rounding":
        return value in ("half_up", "half_even")
    if kind == "dataflow":
        return isinstance(value, str) and value.lower() in (*PRESETS, "custom")
    if kind == "name":
        from gen.spec import _VERILOG_KEYWORDS
        return (isinstance(value, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", value)
                is not None and value not in _VERILOG_KEYWORDS and not keyword.iskeyword(value))
    raise AssertionError(kind)


def spec_invalid(data: dict) -> list[tuple[str, str]]:
    """Independent statement of what makes a spec invalid: (why, the name the refusal names)."""
    fields = {(f[0], f[1]): f for f in _spec_fields()}
    sections = {f[0] for f in fields} - {""}
    bad = []
    for key, value in data.items():
        if key in sections:
            if not isinstance(value, dict):
                bad.append((f"[{key}] is {value!r}", key))
                continue
            for k, v in value.items():
                f = fields.get((key, k))
                if f is None:
                    bad.append((f"unknown {key}.{k}", k))
                elif not field_valid(f[2], f[4], f[5], v):
                    bad.append((f"{key}.{k} = {v!r}", k))
        elif ("", key) in fields:
            f = fields[("", key)]
            if not field_valid(f[2], f[4], f[5], value):
                bad.append((f"{key} = {value!r}", key))
        else:
            bad.append((f"unknown {key}", key))
    for section, key in (("", "name"), ("array", "rows"), ("array", "cols")):
        table = data.get(section, {}) if section else data
        if isinstance(table, dict) and key not in table:
            bad.append((f"missing {section}.{key}", key))
    flow = data.get("dataflow", "ws")
    if isinstance(flow, str) and flow.lower() == "custom":
        bad.append(("custom dataflow without [mapping]", "mapping"))
    if "spads" in data and isinstance(flow, str) and flow.lower() in PRESETS and \
            flow.lower() != "rs":
        bad.append(("[spads] on a dataflow other than rs", "spads"))
    return bad


@st.composite
def spec_cases(draw):
    fields = _spec_fields()
    data = base_spec(draw(st.sampled_from(PRESETS)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "set", "set", "del", "unknown", "table", "name"]))
        if kind in ("set", "name"):
            section, key, fkind, _d, low, high = (
                next(f for f in fields if f[1] == "name") if kind == "name"
                else draw(st.sampled_from(fields)))
            if fkind is int:
                value = draw(st.one_of(st.integers(low - 2, high + 2), junk_value))
            elif fkind == "name":
                value = draw(st.one_of(text, st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}",
                                                           fullmatch=True)))
            elif fkind == "dataflow":
                value = draw(st.one_of(st.sampled_from([*PRESETS, "WS", "Rs", "custom"]),
                                       junk_value))
            else:
                value = draw(junk_value)
            table = data.setdefault(section, {}) if section else data
            if isinstance(table, dict):
                table[key] = value
        elif kind == "del":
            section, key = draw(st.sampled_from([("", "name"), ("array", "rows"),
                                                 ("array", "cols"), ("array", None)]))
            if key is None:
                data.pop(section, None)
            elif isinstance(data.get(section) if section else data, dict):
                (data[section] if section else data).pop(key, None)
        elif kind == "unknown":
            section = draw(st.sampled_from(["", "array", "precision", "buffers", "pipeline"]))
            key = draw(st.sampled_from(["row", "colls", "depth", "Name", "extra", "précision"]))
            table = data.setdefault(section, {}) if section else data
            if isinstance(table, dict):
                table[key] = draw(junk_value)
        else:
            section = draw(st.sampled_from(["array", "precision", "buffers", "pipeline",
                                            "postproc", "energy"]))
            data[section] = draw(st.one_of(st.integers(), text,
                                           st.lists(st.integers(), max_size=2)))
    raw = draw(st.one_of(st.none(), st.none(), st.tuples(
        st.sampled_from(["truncate", "insert", "bytes"]), st.integers(0, 400),
        st.binary(max_size=8))))
    command = draw(st.sampled_from(["generate", "show", "estimate"]))
    return {"data": data, "raw": raw, "command": command}


def run_spec_case(case) -> list:
    from gen.spec import _RENAME
    blob = toml_text(case["data"]).encode("utf-8", "surrogatepass")
    raw = case["raw"]
    if raw:
        op, pos, extra = raw
        pos = min(pos, len(blob))
        blob = (blob[:pos] if op == "truncate" else blob[:pos] + extra + blob[pos:]
                if op == "insert" else extra)
    with case_root() as root:
        (root / "work").mkdir()
        (root / "work" / "spec.toml").write_bytes(blob)
        argv = {"generate": ["generate", "spec.toml", "-o", "out"],
                "show": ["show", "spec.toml", "-o", "pic.svg"],
                "estimate": ["estimate", "spec.toml", "--layer", "C=4,H=6,W=6,K=4,R=3,S=3"]
                }[case["command"]]
        o = run_cli(argv, root, outputs=("out", "pic.svg"))
    meaning = []
    if raw is None:
        bad = spec_invalid(case["data"])
        if bad:
            meaning += must_refuse(o, "; ".join(w for w, _ in bad), tuple(n for _, n in bad))
        elif o.reached is not None:
            spec = o.reached.info["args"][0]
            for section, table in case["data"].items():
                items = table.items() if isinstance(table, dict) else [(section, table)]
                for key, value in items:
                    sec = section if isinstance(table, dict) else ""
                    got = getattr(spec, _RENAME.get((sec, key), key))
                    want = value.lower() if key == "dataflow" else value
                    if got != want:
                        meaning.append(f"{sec}.{key} = {value!r} became {got!r}")
    return judge(o, meaning)


# -- family: layer strings ----------------------------------------------------------------------
MAX_DIM = 1 << 16      # the documented largest layer dimension (gen/layer.py)
LAYER_KEYS = ("N", "C", "H", "W", "K", "R", "S", "stride", "pad", "dilation", "groups")
LAYER_ALIASES = {"U": "stride", "D": "dilation", "G": "groups", "padding": "pad"}


def int_or_none(t: str):
    try:
        return int(t)
    except ValueError:
        return None


@st.composite
def layer_items(draw, small: bool):
    """(text, expected fields or None when the text is certainly invalid, why)."""
    dims = st.integers(1, 6 if small else 40)
    items, fields, why = [], {}, []
    keys = ["C", "H", "W", "K"] + draw(st.lists(st.sampled_from(
        [*LAYER_KEYS, *LAYER_ALIASES, "Q", "x", "c", ""]), max_size=4))
    keys = draw(st.permutations(keys))
    for key in keys:
        if draw(st.integers(0, 9)) == 0:
            continue                                  # a required key may go missing
        value = draw(st.one_of(dims.map(str), dims.map(str), st.sampled_from(
            ["0", "-1", "1.5", "", "x", " 3", "+2", "1_0", "2e1", "99999999999999999999"])))
        items.append(f"{key}={value}")
        name = LAYER_ALIASES.get(key, key)
        v = int_or_none(value)
        if name not in LAYER_KEYS:
            why.append(f"unknown key {key!r}")
        elif name in fields:
            why.append(f"{name} given twice")
        elif v is None:
            why.append(f"{key}={value!r} is not an integer")
        elif not (0 if name == "pad" else 1) <= v <= MAX_DIM:
            why.append(f"{key}={v} out of range")
        elif v > 64:
            why.append("")                          # too big to run quickly: any answer
        fields[name] = v
    for req in ("C", "H", "W", "K"):
        if req not in fields:
            why.append(f"{req} missing")
    sep = draw(st.sampled_from([",", ",", ";", ", "]))
    return sep.join(items), fields, [w for w in why if w], any(w == "" for w in why)


@st.composite
def layer_cases(draw):
    command = draw(st.sampled_from(["estimate", "simulate"]))
    text_, fields, why, big = draw(layer_items(small=command == "simulate"))
    if draw(st.integers(0, 19)) == 0:
        text_ = draw(st.one_of(text, st.sampled_from(["resnet18:conv9", "lenet5:conv2", ":"])))
        fields, why, big = None, [], False
    return {"command": command, "text": text_, "fields": fields, "why": why, "big": big}


def run_layer_case(case) -> list:
    from gen.layer import ConvLayer
    if case["big"] and not case["why"]:
        return []                                   # a huge valid layer: not a quick case
    with case_root() as root:
        (root / "work").mkdir()
        (root / "work" / "spec.toml").write_text(toml_text(base_spec()))
        argv = [case["command"], "spec.toml", "--layer", case["text"]]
        o = run_cli(argv, root)
    meaning = []
    if case["why"]:
        meaning += must_refuse(o, "; ".join(case["why"]))
    elif case["fields"] is not None and not o.refused:
        if o.reached is None and case["command"] == "simulate":
            meaning.append(f"simulate neither refused nor reached the simulator: {o.describe()}")
        elif o.reached is not None:
            layer = o.reached.info["layer"]
            want = dataclasses.replace(ConvLayer(C=1, H=1, W=1, K=1), **case["fields"])
            for f, v in case["fields"].items():
                if getattr(layer, f) != v:
                    meaning.append(f"layer {f}={v} became {getattr(layer, f)} ({want})")
    return judge(o, meaning)


# -- family: CSV layer tables --------------------------------------------------------------------
@st.composite
def csv_cases(draw):
    extra = draw(st.lists(st.sampled_from(["N", "stride", "pad", "dilation", "groups",
                                           "repeat", "layer", "network"]), max_size=3,
                          unique=True))
    if draw(st.integers(0, 4)) == 0:
        extra.append(draw(st.sampled_from(["c", " h ", "Stride", "bogus", "", "Padding", "U"])))
    cols = draw(st.permutations(["C", "H", "W", "K", "R", "S", *extra]))
    if draw(st.integers(0, 7)) == 0:
        cols = cols[1:]
    aliases = {"padding": "pad", "u": "stride", "d": "dilation", "g": "groups", "name": "layer"}
    norm = [aliases.get(c.strip().lower(), c.strip().lower()) for c in cols]
    why = []
    known = {"c", "h", "w", "k", "r", "s", "n", "stride", "pad", "dilation", "groups", "repeat",
             "layer", "network"}
    for c in norm:
        if c not in known:
            why.append(f"column {c!r}")
    if len(set(norm)) != len(norm):
        why.append("repeated column")
    for req in "chwkrs":
        if req not in norm:
            why.append(f"missing {req}")
    rows = []
    for _ in range(draw(st.integers(1, 3)) if draw(st.integers(0, 9)) else 0):
        row = []
        for c in norm:
            if c in ("layer", "network"):
                v = draw(st.sampled_from(["a", "", "x y", '"q"']))
            else:
                hi = 3 if c in ("r", "s", "stride", "dilation", "groups") else 6
                lo = 3 if c in ("h", "w") else 1
                v = draw(st.integers(lo, hi).map(str)) if draw(st.integers(0, 29)) else \
                    draw(st.sampled_from(["0", "-2", "", "1.0", "abc", "3", " 4"]))
                iv = int_or_none(v)
                if v.strip() == "" and c not in "chwkrs":
                    pass                # an empty optional cell: not given (documented)
                elif iv is None or iv < (0 if c == "pad" else 1):
                    why.append(f"{c}={v!r}")
            row.append(v)
        if draw(st.integers(0, 19)) == 0:
            row.append("7")
            why.append("extra value")
        rows.append(row)
    if not rows:
        why.append("no rows")
    body = "\n".join(",".join(r) for r in [cols, *rows]) + "\n"
    corrupt = draw(st.binary(min_size=1, max_size=12)) if draw(st.integers(0, 9)) == 0 \
        else None
    return {"body": body, "why": why, "corrupt": corrupt}


def run_csv_case(case) -> list:
    with case_root() as root:
        (root / "work").mkdir()
        (root / "work" / "spec.toml").write_text(toml_text(base_spec()))
        blob = case["body"].encode() if case["corrupt"] is None else case["corrupt"]
        (root / "work" / "layers.csv").write_bytes(blob)
        o = run_cli(["estimate", "spec.toml", "--csv", "layers.csv", "--csv-out", "o.csv"],
                    root, outputs=("o.csv",))
    meaning = []
    if case["why"] and case["corrupt"] is None:
        meaning += must_refuse(o, "; ".join(case["why"]), ("layers.csv",))
    return judge(o, meaning)
