"""What compress_weights runs, in order: calibration items, the plan, the data-aware steps, rt_info, the summary."""
