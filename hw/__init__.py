"""accelgen hardware: Amaranth 0.5 components assembled from a spec."""
