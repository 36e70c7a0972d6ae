"""Running mailbot as a service: health, Prometheus metrics, HTTP, systemd notifications."""
