"""The load generator behind `banking-cli bench`: its workloads, the driver and the report."""
