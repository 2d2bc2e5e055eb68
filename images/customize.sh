#!/bin/sh
# Runs inside the arm64 root filesystem (under qemu-user) after every package is installed: the service user,
# the Python venv, enabled units, no shared secrets, and the one initramfs generation of the build.
set -eu

SPINAL_UID=900
WHEELS=/tmp/spinal-wheels

echo "spinal: service user"
groupadd --system --gid "$SPINAL_UID" spinal
useradd --system --uid "$SPINAL_UID" --gid spinal --groups dialout,video \
    --home-dir /var/lib/spinal --no-create-home --shell /usr/sbin/nologin spinal
install -d -o spinal -g spinal -m 0750 /var/lib/spinal

echo "spinal: python venv"
# The build machine's pip settings (index, find-links) mean nothing in here: install only from our wheels.
for var in $(env | sed -n 's/^\(PIP_[A-Z_]*\)=.*/\1/p'); do unset "$var"; done
export PIP_CONFIG_FILE=/dev/null
python3 -m venv /opt/spinal/venv
/opt/spinal/venv/bin/python -m pip install --quiet --no-index --no-cache-dir --disable-pip-version-check \
    --find-links "$WHEELS/aarch64" "$WHEELS"/project/*.whl
/opt/spinal/venv/bin/python -m pip uninstall --quiet --yes pip setuptools 2>/dev/null || true
# Test suites and C headers of the dependencies are never used on the device.
site=$(/opt/spinal/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
find "$site" -mindepth 2 -maxdepth 3 -type d -name tests -prune -exec rm -rf {} +
rm -rf "$site/pyarrow/include" "$site"/numpy/_core/include
/opt/spinal/venv/bin/spinal-edge version
/opt/spinal/venv/bin/spinal version

echo "spinal: units"
systemctl enable spinal-firstboot.service spinal-preseed.service spinal-setup-code.path spinal-edge.service nftables.service \
    systemd-timesyncd.service NetworkManager.service
systemctl disable ssh.service
systemctl set-default multi-user.target

echo "spinal: no shared secrets, no passwords"
rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
ln -sf /etc/machine-id /var/lib/dbus/machine-id
passwd --lock root >/dev/null
# Every account: locked ('!...') or no login ('*'), never a hash or an empty password.
awk -F: '$2 != "*" && $2 !~ /^!/ { print "account " $1 " has a password"; bad = 1 } END { exit bad }' /etc/shadow
echo spinal > /etc/hostname
ln -sf /run/NetworkManager/resolv.conf /etc/resolv.conf
install -d -m 0755 /data /etc/ssh/authorized_keys /boot/firmware
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*

echo "spinal: initramfs and boot files"
sed -i 's/^update_initramfs=.*/update_initramfs=yes/' /etc/initramfs-tools/update-initramfs.conf
version=$(ls /usr/lib/modules | sort -V | tail -1)
# The kernel package made the initramfs; make it again only if it lacks the data-partition script.
if ! lsinitramfs "/boot/initrd.img-$version" | grep -q 'scripts/local-bottom/spinal-data'; then
    update-initramfs -c -k "$version"
fi
# Copy kernel, initrd and device trees to /boot/firmware and write config.txt (with raspi-firmware-custom).
DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware "$version" "/boot/vmlinuz-$version"
# The Pi firmware passes this line to the kernel; root stays read-only (the initramfs adds the data partition).
echo "console=ttyS1,115200 console=tty0 root=LABEL=spinal-root rootfstype=ext4 ro fsck.mode=skip net.ifnames=0 rootwait" \
    > /boot/firmware/cmdline.txt
ls -l /boot/firmware | grep -E 'vmlinuz|initrd|config.txt|cmdline.txt'
