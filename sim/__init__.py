"""accelgen simulation: numpy golden model, ISA reference machine, cocotb driver and runners."""
