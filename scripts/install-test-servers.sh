#!/usr/bin/env bash
# Installs the real servers the integration tests start (Mosquitto, InfluxDB 1.x, VictoriaMetrics,
# Chromium, pymodbus, mbpoll) from Debian's packages when they are missing. Safe to run again: it installs nothing
# that is already there.
set -euo pipefail
need=()
[ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
[ -x /usr/bin/influxd ] || need+=(influxdb)
[ -x /usr/bin/victoria-metrics ] || need+=(victoria-metrics)
# The deployment checks: the broker health check of docker-compose.yml, and Compose itself, which
# validates and resolves docker-compose.yml without a Docker engine.
[ -x /usr/bin/mosquitto_sub ] || need+=(mosquitto-clients)
[ -x /usr/bin/docker-compose ] || need+=(docker-compose)
# The dashboard's browser tests, screenshots and benchmark (playwright-core drives it).
[ -x /usr/bin/chromium ] || need+=(chromium)
# The Modbus tests: an independent Modbus server (pymodbus 3.0), a standard master (mbpoll), and
# socat for a pseudo-terminal serial port.
[ -d /usr/lib/python3/dist-packages/pymodbus ] || need+=(python3-pymodbus)
[ -x /usr/bin/mbpoll ] || need+=(mbpoll)
[ -x /usr/bin/socat ] || need+=(socat)
# Chinese text in the dashboard's screenshots (Chromium draws boxes without a CJK font).
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "installing test servers: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's packages may start their services; the tests start their own on free ports instead.
for svc in mosquitto influxdb victoria-metrics; do
  if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
echo "test servers ready: $(/usr/sbin/mosquitto -h 2>/dev/null | head -1); $(/usr/bin/influxd version 2>/dev/null); $(/usr/bin/chromium --version 2>/dev/null)"
