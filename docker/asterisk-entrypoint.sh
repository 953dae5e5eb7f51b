#!/bin/sh
# Start Asterisk from the configuration Centralino rendered (`centralino dialplan render`).
# The rendered files hold secrets (0640, root): copy them where Asterisk reads them, owned by
# the unprivileged user it runs as, then hand over to Asterisk in the foreground.
set -eu
RENDERED="${CENTRALINO_RENDERED:-/etc/asterisk-rendered}"
ETC="${ASTERISK_ETC:-/etc/asterisk}"
USER="${ASTERISK_USER:-asterisk}"
if [ ! -f "$RENDERED/asterisk.conf" ]; then
    echo "asterisk-entrypoint: no rendered configuration in $RENDERED (run: centralino dialplan render --out $RENDERED)" >&2
    exit 1
fi
mkdir -p "$ETC" /var/run/asterisk /var/log/asterisk /var/spool/asterisk /var/lib/asterisk
cp "$RENDERED"/*.conf "$ETC"/
chown -R "$USER:$USER" "$ETC" /var/run/asterisk /var/log/asterisk /var/spool/asterisk /var/lib/asterisk
chmod 0750 "$ETC"
chmod 0640 "$ETC"/*.conf
exec /usr/sbin/asterisk -f -C "$ETC/asterisk.conf" -U "$USER" -G "$USER" "$@"
