#!/usr/bin/env python3
# Prints the manifest of a directory tree as JSON, read from the real file system: for every entry below DIR (raw
# byte names, base64 in "p64" plus a readable "path"), its type, mode, uid, gid, size, sha256 of the content,
# symlink target, device numbers (a whiteout is a char device 0:0), xattrs (name -> hex value; every namespace,
# trusted.overlay.* included) and its hard-link group (the smallest path of the same inode). Directory and file times
# are left out: the recording keeps mtimes, but the comparison is about what the container's files *are*.
import base64, hashlib, json, os, stat, sys

def xattrs(p):
    out = {}
    try:
        names = os.listxattr(p, follow_symlinks=False)
    except OSError:
        return out
    for n in sorted(names):
        try:
            out[n] = os.getxattr(p, n, follow_symlinks=False).hex()
        except OSError:
            pass
    return out

def walk(root):
    entries, first_of_inode = {}, {}
    stack = [b""]
    while stack:
        rel = stack.pop()
        full = os.path.join(root, rel) if rel else root
        for name in sorted(os.listdir(full)):
            r = os.path.join(rel, name) if rel else name
            p = os.path.join(root, r)
            st = os.lstat(p)
            e = {"type": "?", "mode": oct(stat.S_IMODE(st.st_mode)), "uid": st.st_uid, "gid": st.st_gid,
                 "xattrs": xattrs(p)}
            if stat.S_ISDIR(st.st_mode):
                e["type"] = "dir"; stack.append(r)
            elif stat.S_ISREG(st.st_mode):
                e["type"] = "file"; e["size"] = st.st_size
                with open(p, "rb") as f:
                    e["sha256"] = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                e["type"] = "symlink"; e["target"] = base64.b64encode(os.readlink(p)).decode()
            elif stat.S_ISCHR(st.st_mode):
                e["type"] = "chr"; e["rdev"] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
            elif stat.S_ISBLK(st.st_mode):
                e["type"] = "blk"; e["rdev"] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
            elif stat.S_ISFIFO(st.st_mode):
                e["type"] = "fifo"
            elif stat.S_ISSOCK(st.st_mode):
                e["type"] = "sock"
            # Overlay makes every whiteout a link of one shared inode (its "whiteout" tmpfile): not a hard link the
            # container made, so whiteouts form no link group.
            whiteout = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1 and not whiteout:
                key = (st.st_dev, st.st_ino)
                e["link_group"] = first_of_inode.setdefault(key, r).decode("utf-8", "backslashreplace")
            entries[r.decode("utf-8", "backslashreplace")] = e
    # Hard-link groups are named by the smallest path so the name does not depend on walk order.
    groups = {}
    for path, e in entries.items():
        if "link_group" in e: groups.setdefault(e["link_group"], []).append(path)
    for members in groups.values():
        for path in members: entries[path]["link_group"] = min(members)
    return entries

if __name__ == "__main__":
    json.dump(walk(os.fsencode(sys.argv[1])), sys.stdout, sort_keys=True, indent=0)
