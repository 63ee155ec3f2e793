module gitops-bot/benchmarks/intakeload

go 1.22
