# A throwaway "host root" for tests: this machine's /usr under a tmpfs-backed overlay (writes land in the upper
# directory, the real /usr is untouched), /bin /lib /lib64 /sbin as the merged-/usr symlinks, the loader cache,
# /dev, /proc and /sys — enough to chroot into and run rpm's scriptlets, systemctl (offline, as it does in a chroot) and
# our binaries. Source it from a script that runs in its own mount namespace (`unshare -m --propagation private`):
# the mounts then vanish with the namespace, also when the script fails.
#   hr_make DIR     builds it at DIR/root (upper layer: DIR/up/usr); sets HR (the root) and HR_UPPER
hr_make() {
  local d=$1
  mkdir -p "$d/up" && mount -t tmpfs tmpfs "$d/up" || return 1
  mkdir -p "$d/up/usr" "$d/up/work" "$d/root/usr"
  mount -t overlay overlay -o "lowerdir=/usr,upperdir=$d/up/usr,workdir=$d/up/work" "$d/root/usr" || return 1
  HR=$d/root; HR_UPPER=$d/up/usr
  ln -s usr/bin "$HR/bin"; ln -s usr/lib "$HR/lib"; ln -s usr/lib64 "$HR/lib64"; ln -s usr/sbin "$HR/sbin"
  mkdir -p "$HR/etc/systemd/system" "$HR/dev" "$HR/proc" "$HR/sys" "$HR/tmp" "$HR/run" "$HR/var/lib" "$HR/var/tmp"
  cp -a /etc/ld.so.cache /etc/ld.so.conf /etc/ld.so.conf.d /etc/passwd /etc/group "$HR/etc/"
  mount --bind /dev "$HR/dev" && mount -t proc proc "$HR/proc" && mount --rbind /sys "$HR/sys"
}

# Files (not directories) in the overlay's upper layer: what was written under the host root's /usr.
hr_usr_files() { (cd "$HR_UPPER" && find . ! -type d -printf '/usr/%P\n' | sort); }
