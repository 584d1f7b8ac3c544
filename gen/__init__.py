"""accelgen software side: spec, layer, ISA, tiler, frames, Verilog emission, CLI."""
