"""The webhook server: app factory, serving, intake, the job worker loop and timers."""
