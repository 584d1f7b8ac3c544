"""accelgen FPGA flows (synthesis, sweeps, board tops). Arrives with the FPGA issue."""
