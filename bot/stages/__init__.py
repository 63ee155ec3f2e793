"""The steps workflows compose: inputs, render, plan, live preview, apply, drift, validate."""
