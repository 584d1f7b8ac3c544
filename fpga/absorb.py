"""Fold fabric registers into the ECP5 hard blocks' own pipeline registers, on Yosys's netlist.

Yosys maps every memory to ``DP16KD`` with ``REGMODE=NOREG`` and every multiplier to a
``MULT18X18D`` with no input or output registers, even when the design has registers right there:
the block RAM's 5.8 ns clock-to-output and the DSP's combinational delay then sit on paths through
the fabric. This pass, run on the synthesised JSON netlist before place and route, moves such
registers into the blocks:

* a ``DP16KD`` read port whose every used data output drives exactly one flip-flop (same clock,
  no clock enable, no set/reset; hw/buffer.py makes that register reset-less) gets
  ``REGMODE=OUTREG`` and drives the flip-flops' outputs itself; the flip-flops go;
* a ``MULT18X18D`` operand whose every bit comes from such a flip-flop (or a constant) reads the
  flip-flops' inputs through its input register (``REG_INPUTx_CLK``); the flip-flops stay if
  anything else reads them (the register is duplicated, not moved);
* a ``MULT18X18D`` whose every used product bit drives exactly one such flip-flop gets its output
  register (``REG_OUTPUT_CLK``) in their place.

Each rewrite keeps the netlist cycle-for-cycle equivalent: a register with a constant-1 enable and
no reset becomes the same register inside the block. Anything else (an enable, a reset, another
clock, a flip-flop shared with other logic on the output side) is left alone.
"""

from __future__ import annotations

import collections
import re

__all__ = ["absorb_registers"]


def _plain_ff(cell: dict, clk) -> bool:
    """A TRELLIS_FF on ``clk`` that loads every cycle and has no set/reset."""
    if cell["type"] != "TRELLIS_FF":
        return False
    p, c = cell["parameters"], cell["connections"]
    if c.get("CLK") != clk or p.get("CLKMUX", "CLK").strip() != "CLK":
        return False
    ce_on = p.get("CEMUX", "1").strip() == "1" or c.get("CE") in (["1"], None)
    lsr_off = p.get("LSRMUX", "LSR").strip() == "0" or c.get("LSR") in (["0"], None)
    return ce_on and lsr_off


class _Module:
    """One netlist module with its nets' loads and drivers, and the flip-flops to delete."""

    def __init__(self, mod: dict):
        self.cells = mod.get("cells", {})
        self.loads = collections.defaultdict(list)     # net -> [(cell, port)]
        self.driver = {}                               # net -> (cell, port)
        for name, c in self.cells.items():
            for port, bits in c["connections"].items():
                d = c["port_directions"].get(port)
                for b in bits:
                    if isinstance(b, int):
                        if d == "input":
                            self.loads[b].append((name, port))
                        else:
                            self.driver[b] = (name, port)
        self.ports = {b for p in mod.get("ports", {}).values() for b in p["bits"]
                      if isinstance(b, int)}
        self.dead = set()

    def sole_ff(self, net, clk):
        """The flip-flop that is ``net``'s only load (via DI), if it is a plain one on ``clk``."""
        if net in self.ports or len(self.loads[net]) != 1:
            return None
        name, port = self.loads[net][0]
        ok = port == "DI" and name not in self.dead and _plain_ff(self.cells[name], clk)
        return name if ok else None

    def fold_outputs(self, name, outs, clk) -> bool:
        """Move the sole flip-flop of each used output net of cell ``name`` into it (``outs``:
        port, bits); False, changing nothing, if any used output has another load."""
        used = [(p, b[0]) for p, b in outs
                if isinstance(b[0], int) and (self.loads[b[0]] or b[0] in self.ports)]
        ffs = [(p, self.sole_ff(n, clk)) for p, n in used]
        if not ffs or any(f is None for _, f in ffs):
            return False
        for p, f in ffs:
            q = self.cells[f]["connections"]["Q"]
            self.cells[name]["connections"][p] = q
            self.driver[q[0]] = (name, p)
            self.dead.add(f)
        return True

    def ff_source(self, net, clk):
        """The name of the plain flip-flop driving ``net`` (on ``clk``, or any clock if None)."""
        d = self.driver.get(net)
        if d is None or d[1] != "Q" or d[0] in self.dead:
            return None
        ff = self.cells[d[0]]
        return d[0] if _plain_ff(ff, clk if clk is not None else ff["connections"].get("CLK")) \
            else None

    def unload(self, net, cell, port):
        """``cell.port`` no longer reads ``net``; a flip-flop left driving nothing goes."""
        self.loads[net] = [x for x in self.loads[net] if x != (cell, port)]
        d = self.driver.get(net)
        if not self.loads[net] and net not in self.ports and d and d[1] == "Q" \
                and self.cells[d[0]]["type"] == "TRELLIS_FF":
            self.dead.add(d[0])


def absorb_registers(netlist: dict) -> dict[str, int]:
    """Rewrite ``netlist`` (Yosys JSON, flattened) in place; returns how many blocks took each
    kind of register."""
    counts = {"bram_outreg": 0, "dsp_inreg": 0, "dsp_outreg": 0}
    for mod in netlist["modules"].values():
        if not any(c["type"] in ("DP16KD", "MULT18X18D") for c in mod.get("cells", {}).values()):
            continue
        nl = _Module(mod)
        for name, c in list(nl.cells.items()):
            if c["type"] == "DP16KD":
                for side in "AB":
                    if c["parameters"].get(f"REGMODE_{side}", "NOREG") != "NOREG":
                        continue
                    outs = [(p, b) for p, b in c["connections"].items()
                            if re.fullmatch(f"DO{side}\\d+", p)]
                    if nl.fold_outputs(name, outs, c["connections"][f"CLK{side}"]):
                        c["parameters"][f"REGMODE_{side}"] = "OUTREG"
                        c["connections"][f"OCE{side}"] = ["1"]
                        c["port_directions"][f"OCE{side}"] = "input"
                        counts["bram_outreg"] += 1
            elif c["type"] == "MULT18X18D":
                _absorb_dsp(nl, name, c, counts)
        for f in nl.dead:
            del nl.cells[f]
    return counts


def _absorb_dsp(nl: _Module, name: str, c: dict, counts: dict) -> None:
    conn, par = c["connections"], c["parameters"]
    clk = None
    for side in "AB":
        if par.get(f"REG_INPUT{side}_CLK", "NONE") != "NONE":
            continue
        srcs = []
        for p, b in conn.items():
            if not re.fullmatch(f"{side}\\d+", p):
                continue
            if not isinstance(b[0], int):
                srcs.append((p, None))        # a constant: the same through a register
                continue
            ff = nl.ff_source(b[0], clk)
            if ff is None:
                break
            clk = nl.cells[ff]["connections"]["CLK"]
            srcs.append((p, ff))
        else:
            if all(f is None for _, f in srcs):
                continue
            for p, ff in srcs:
                if ff is not None:
                    q, di = conn[p][0], nl.cells[ff]["connections"]["DI"]
                    conn[p] = di
                    if isinstance(di[0], int):
                        nl.loads[di[0]].append((name, p))
                    nl.unload(q, name, p)
            par.update({f"REG_INPUT{side}_CLK": "CLK0", f"REG_INPUT{side}_CE": "CE0",
                        f"REG_INPUT{side}_RST": "RST0"})
            counts["dsp_inreg"] += 1
    if par.get("REG_OUTPUT_CLK", "NONE") == "NONE":
        outs = [(p, b) for p, b in conn.items() if re.fullmatch(r"P\d+", p)]
        out_clk = clk
        if out_clk is None:    # no operand register taken: the product flip-flops' clock
            for _, b in outs:
                if isinstance(b[0], int) and len(nl.loads[b[0]]) == 1:
                    out_clk = nl.cells[nl.loads[b[0]][0][0]]["connections"].get("CLK")
                    break
        if out_clk is not None and nl.fold_outputs(name, outs, out_clk):
            par.update({"REG_OUTPUT_CLK": "CLK0", "REG_OUTPUT_CE": "CE0",
                        "REG_OUTPUT_RST": "RST0"})
            clk = out_clk
            counts["dsp_outreg"] += 1
    if clk is not None and "CLK0" in (par.get("REG_OUTPUT_CLK"), par.get("REG_INPUTA_CLK"),
                                      par.get("REG_INPUTB_CLK")):
        conn["CLK0"], conn["CE0"], conn["RST0"] = clk, ["1"], ["0"]
        c["port_directions"].update(CLK0="input", CE0="input", RST0="input")
