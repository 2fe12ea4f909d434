"""``python -m samedenhancer.bench <name>``: benchmarks that print ratios against a named competitor
measured in the same run, with the machine and versions. One module per sub-benchmark."""

SUBCOMMANDS = ("core", "models", "enhance", "stream", "quality", "memory", "samaug", "distributed", "interactive", "volumes",
               "unet", "paper")
