#!/usr/bin/env python3
"""Build an image recipe into a layered OCI image with mmdebstrap, reproducibly.

    images/build-recipe.py [options] RECIPE_DIR

    --oci-layout DIR    write the image into the OCI image layout DIR: made
                        when missing; in an existing layout the image is
                        added, replacing one of the same name (blobs are
                        shared, and those no image needs any more removed)
    --oci-archive FILE  write the same layout as one tar file (what skopeo
                        calls oci-archive:FILE); may be given with --oci-layout
    --tag NAME          the image's name in the layout, its index's
                        org.opencontainers.image.ref.name (default: the
                        recipe directory's name)
    --progress          progress as JSON lines on stdout (below)
    --json              the results (digests, sizes, paths) as JSON on stdout
    --cache DIR         the build cache (default $SANDBOXD_IMAGE_CACHE or
                        /var/cache/sandboxd-images)
    --debs DIR          where downloaded packages are kept (default CACHE/debs)
    --epoch N           SOURCE_DATE_EPOCH of the image (default
                        $SOURCE_DATE_EPOCH or 1704067200)
    --force             build the recipe again even when the cache holds it
                        (its bases are still taken from the cache)
    --check             only read the recipe and its bases, print the config

Exit status: 0 done; 1 a bad recipe, a failed build or an output that cannot
be written, with one message on stderr; 2 a bad command line; 75 the Debian
mirror cannot be reached (and the cache does not hold the result).

One build runs at a time per cache (a second one waits for the first). To
cancel a build, send SIGTERM to the script's process group: mmdebstrap runs
in it and cleans up after itself; the unfinished result (CACHE/NAME-KEY.tmp-PID)
is removed by the next build of that recipe. An output is written only
once the build is complete, index.json last, so a cancelled build leaves no
half image in a layout.

With --progress, stdout carries only JSON objects, one a line, each with
"phase" and "bytes" (and "image", the recipe being worked on):

    resolve     the recipes are read; "images": the chain, bottom first
    mirror      the mirror is being checked (only when something is built)
    mmdebstrap  mmdebstrap is running (once a second; bytes stay 0 until it
                writes the tree's tarball at its end)
    index, rootfs, layer
                reading the tree, writing the whole tree, writing the
                recipe's own layer: bytes so far
    built, cached
                a recipe's layer is ready: bytes = its size, "digest"
    layout, archive
                blobs written into the layout or the tar file: bytes so
                far, "total"
    done        bytes = the image's size (all layers), "name", "digest"
                (the manifest's), "config", "layers", "oci_layout",
                "oci_archive"
    error       "status" (the exit status) and "message", also on stderr

A recipe is a directory holding a file named `recipe` (KEY=value lines,
see sandboxctl(1), "image build") and the files it adds. A recipe with
BASE= is built on the recipe of that name beside it, which is built first.

The image has one layer per recipe of the chain: a recipe on a base reuses
the base's layer blob unchanged (the same digest) and adds its own, only
what differs from the base's tree, with OCI whiteouts (.wh.NAME) for what it
removed. Layers are plain tar (their digest is their diff_id). The config
carries Env, WorkingDir, User, Cmd and ExposedPorts from the recipes,
created = SOURCE_DATE_EPOCH, and no time of the build.

Each recipe's result goes to CACHE/NAME-KEY/, where KEY is the sha256 of
everything its layer depends on (the code that makes layers, what the
recipe says about the tree and the files it adds, the base's key,
SOURCE_DATE_EPOCH, the mirrors, mmdebstrap's version); ENV, USER, CMD and
EXPOSE only go into the config, so changing them reuses the layers:

  layer.tar     this recipe's own layer
  rootfs.tar    the whole tree (base layers and this one) in one tarball, for
                `sandboxctl image import NAME rootfs.tar` on a daemon that
                imports root filesystem tarballs only
  packages.txt  the installed packages, NAME=VERSION
  info.json     digests, sizes, build time
  build.log     mmdebstrap's output

Packages come from the host's configured Debian mirror (the entries of the
host's apt sources for the recipe's suite and its -updates and -security
suites) and are kept in CACHE/debs for the next build. Two builds against
the same mirror state give byte-identical layers, configs and manifests:
mtimes are clamped to SOURCE_DATE_EPOCH, logs, caches and host files are
removed, entries are sorted and owners numeric.

Python 3 standard library only; needs root and mmdebstrap.
"""

import argparse
import fcntl
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request

DEFAULT_CACHE = "/var/cache/sandboxd-images"
# 2024-01-01T00:00:00Z: any fixed value works; a build's own time must not
# leak into the layers.
DEFAULT_EPOCH = 1704067200
EX_MIRROR = 75

# ---------------------------------------------------------------------------
# The recipe format: KEY=value, one a line, value verbatim to the end of the
# line, # comments. Keys marked "list" may repeat and accumulate.

KEYS = {
    "BASE": "single",      # name of the recipe this one is built on
    "SUITE": "single",     # Debian suite (only where there is no BASE, or equal to it)
    "VARIANT": "single",   # mmdebstrap variant of a recipe without BASE (default minbase)
    "PACKAGES": "list",    # Debian packages, separated by blanks
    "DPKG_OPT": "list",    # one dpkg option (path-exclude=..., path-include=...)
    "REMOVE": "list",      # an absolute path of the tree (a file or a directory) to delete
    "ADD": "list",         # SRC DEST MODE: a file of the recipe directory into the image
    "ENV": "list",         # NAME=value
    "USER": "single",
    "WORKDIR": "single",
    "CMD": "single",       # the command, arguments separated by blanks
    "EXPOSE": "list",      # ports, separated by blanks
}
KEY_RE = re.compile(r"^[A-Z][A-Z_]*$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
SUITE_RE = re.compile(r"^[a-z][a-z0-9-]*$")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]*$|^[0-9]+(:[0-9]+)?$")
VARIANTS = ("minbase", "required", "important", "standard", "apt", "essential")


class RecipeError(Exception):
    pass


class MirrorError(Exception):
    pass


def _abs_image_path(value, what, where):
    if not value.startswith("/") or "\0" in value:
        raise RecipeError("%s: %s must be an absolute path: %r" % (where, what, value))
    parts = [p for p in value.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise RecipeError("%s: %s must not contain . or ..: %r" % (where, what, value))
    return "/" + "/".join(parts)


def read_recipe(directory):
    """Parse DIR/recipe into a dict; raise RecipeError naming the line."""
    directory = os.path.abspath(directory)
    name = os.path.basename(directory)
    if not NAME_RE.match(name):
        raise RecipeError("%s: recipe directory name %r is not a valid image name" % (directory, name))
    path = os.path.join(directory, "recipe")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise RecipeError("%s: %s" % (path, e.strerror))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RecipeError("%s: not UTF-8" % path)
    r = {"name": name, "dir": directory, "raw": raw, "packages": [], "dpkg_opt": [], "add": [],
         "remove": [], "env": [], "expose": []}
    seen = set()
    for lineno, line in enumerate(text.split("\n"), 1):
        where = "%s:%d" % (path, lineno)
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not KEY_RE.match(key):
            raise RecipeError("%s: expected KEY=value" % where)
        if key not in KEYS:
            raise RecipeError("%s: unknown key %s" % (where, key))
        if KEYS[key] == "single":
            if key in seen:
                raise RecipeError("%s: %s given twice" % (where, key))
            seen.add(key)
        if key == "BASE":
            if not NAME_RE.match(value) or value == name:
                raise RecipeError("%s: bad BASE %r" % (where, value))
            r["base"] = value
        elif key == "SUITE":
            if not SUITE_RE.match(value):
                raise RecipeError("%s: bad SUITE %r" % (where, value))
            r["suite"] = value
        elif key == "VARIANT":
            if value not in VARIANTS:
                raise RecipeError("%s: VARIANT must be one of %s" % (where, ", ".join(VARIANTS)))
            r["variant"] = value
        elif key == "PACKAGES":
            for p in value.split():
                if not PACKAGE_RE.match(p):
                    raise RecipeError("%s: bad package name %r" % (where, p))
                if p not in r["packages"]:
                    r["packages"].append(p)
        elif key == "DPKG_OPT":
            if not re.match(r"^path-(exclude|include)=/\S+$", value):
                raise RecipeError("%s: DPKG_OPT takes path-exclude=/GLOB or path-include=/GLOB" % where)
            r["dpkg_opt"].append(value)
        elif key == "ADD":
            f = value.split()
            if len(f) != 3:
                raise RecipeError("%s: ADD takes SRC DEST MODE" % where)
            src, dest, mode = f
            if src.startswith("/") or ".." in src.split("/") or src in ("recipe", ".") or not src:
                raise RecipeError("%s: ADD source %r must be a file of the recipe directory" % (where, src))
            srcpath = os.path.join(directory, src)
            if not os.path.isfile(srcpath) or os.path.islink(srcpath):
                raise RecipeError("%s: ADD source %s is not a regular file" % (where, srcpath))
            dest = _abs_image_path(dest, "ADD destination", where)
            if not re.match(r"^0?[0-7]{3}$", mode):
                raise RecipeError("%s: ADD mode %r is not an octal mode such as 0644" % (where, mode))
            r["add"].append((src, dest, int(mode, 8)))
        elif key == "REMOVE":
            path = _abs_image_path(value, "REMOVE", where)
            if path == "/":
                raise RecipeError("%s: REMOVE of / would leave nothing" % where)
            if path not in r["remove"]:
                r["remove"].append(path)
        elif key == "ENV":
            if not ENV_RE.match(value):
                raise RecipeError("%s: ENV takes NAME=value" % where)
            r["env"].append(value)
        elif key == "USER":
            if not USER_RE.match(value):
                raise RecipeError("%s: bad USER %r" % (where, value))
            r["user"] = value
        elif key == "WORKDIR":
            r["workdir"] = _abs_image_path(value, "WORKDIR", where)
        elif key == "CMD":
            argv = value.split()
            if not argv:
                raise RecipeError("%s: empty CMD" % where)
            r["cmd"] = argv
        elif key == "EXPOSE":
            for p in value.split():
                m = re.match(r"^([0-9]{1,5})(/(tcp|udp))?$", p)
                if not m or not 1 <= int(m.group(1)) <= 65535:
                    raise RecipeError("%s: bad port %r" % (where, p))
                port = "%d/%s" % (int(m.group(1)), m.group(3) or "tcp")
                if port not in r["expose"]:
                    r["expose"].append(port)
    if "base" in r:
        if "variant" in r:
            raise RecipeError("%s: VARIANT belongs to a recipe without BASE" % path)
    else:
        if "suite" not in r:
            raise RecipeError("%s: a recipe without BASE needs SUITE" % path)
        r.setdefault("variant", "minbase")
    return r


def recipe_chain(directory):
    """The recipes from the bottom one to DIR's own, each checked."""
    chain = [read_recipe(directory)]
    while "base" in chain[0]:
        base_dir = os.path.join(os.path.dirname(chain[0]["dir"]), chain[0]["base"])
        if any(r["name"] == chain[0]["base"] for r in chain):
            raise RecipeError("%s: BASE %s makes a cycle" % (chain[0]["dir"], chain[0]["base"]))
        chain.insert(0, read_recipe(base_dir))
    for lower, upper in zip(chain, chain[1:]):
        if upper.setdefault("suite", lower["suite"]) != lower["suite"]:
            raise RecipeError("%s: SUITE %s differs from its base's %s" % (upper["dir"], upper["suite"], lower["suite"]))
    return chain


def image_config(chain):
    """The image's defaults: each recipe's own values win over its base's."""
    env, user, workdir, cmd, expose = {}, "root", "/", None, []
    for r in chain:
        for e in r["env"]:
            k, v = e.split("=", 1)
            env.pop(k, None)
            env[k] = v
        user = r.get("user", user)
        workdir = r.get("workdir", workdir)
        cmd = r.get("cmd", cmd)
        expose += [p for p in r["expose"] if p not in expose]
    return {"Env": ["%s=%s" % kv for kv in env.items()], "User": user, "WorkingDir": workdir,
            "Cmd": cmd or ["/bin/sh"], "ExposedPorts": {p: {} for p in expose}}


# ---------------------------------------------------------------------------
# The host's Debian mirror


def host_mirrors(suite):
    """One-line apt sources for SUITE, SUITE-updates and SUITE-security, as
    this host's apt is configured for them (apt-get indextargets reads every
    sources file in either format)."""
    out = subprocess.run(["apt-get", "indextargets", "--format", "$(REPO_URI) $(RELEASE) $(COMPONENT)",
                          "Identifier: Packages"], capture_output=True, text=True)
    if out.returncode != 0:
        raise MirrorError("apt-get indextargets failed: %s" % out.stderr.strip())
    comps = {}
    for line in out.stdout.splitlines():
        f = line.split()
        if len(f) != 3:
            continue
        uri, release, comp = f
        if release == suite or release in (suite + "-updates", suite + "-security"):
            comps.setdefault((uri, release), [])
            if comp not in comps[(uri, release)]:
                comps[(uri, release)].append(comp)
    if not any(rel == suite for _, rel in comps):
        raise MirrorError("the host's apt sources have no entry for suite %s" % suite)
    order = {suite: 0, suite + "-updates": 1, suite + "-security": 2}
    return ["deb %s %s %s" % (uri, rel, " ".join(c)) for (uri, rel), c in
            sorted(comps.items(), key=lambda kv: (order[kv[0][1]], kv[0][0]))]


def apt_proxy(scheme):
    """The proxy apt itself is configured to use for a URI scheme, if any."""
    out = subprocess.run(["apt-config", "shell", "P", "Acquire::%s::Proxy" % scheme], capture_output=True,
                         text=True).stdout.strip()
    value = shlex.split(out.split("=", 1)[1])[0] if out.startswith("P=") else ""
    return value if "://" in value else None


def check_mirror(lines, timeout=15):
    """Fail with MirrorError when the suite's Release file cannot be fetched
    the way apt would fetch it (its proxy, or the environment's)."""
    uri, rel = lines[0].split()[1:3]
    url = uri.rstrip("/") + "/dists/%s/InRelease" % rel
    scheme = url.split(":", 1)[0]
    proxy = apt_proxy(scheme)
    opener = urllib.request.build_opener(*([urllib.request.ProxyHandler({scheme: proxy})] if proxy else []))
    try:
        with opener.open(urllib.request.Request(url, method="HEAD"), timeout=timeout) as resp:
            if resp.status != 200:
                raise MirrorError("%s: HTTP %d" % (url, resp.status))
    except (urllib.error.URLError, OSError) as e:
        raise MirrorError("cannot reach the Debian mirror (%s): %s" % (url, getattr(e, "reason", e)))


# LAYER-CODE-BEGIN
# What lies between this line and LAYER-CODE-END makes the layers, so its
# text is part of every cache key (recipe_key): a change here builds every
# recipe again. Code that only reads recipes, writes the OCI image or
# talks to the caller lies outside and leaves cached layers valid.

# ---------------------------------------------------------------------------
# Tar streams: index, normalise, diff, apply


def path_key(name):
    """Sort key giving the order of `tar --sort=name`: each directory's
    entries by name, a directory's contents right after it."""
    return tuple(p.encode("utf-8", "surrogateescape") for p in name.split("/") if p)


def clean_name(name):
    parts = [p for p in name.split("/") if p and p != "."]
    return "/".join(parts)


def excluded(name):
    # Device nodes are the runtime's to provide (sandboxd mounts its own
    # /dev); a layer carrying them would be refused by an importer.
    return name.startswith("dev/")


class Entry:
    __slots__ = ("info", "name", "sha256", "xattrs")

    def sig(self):
        i = self.info
        return (i.type, i.mode, i.uid, i.gid, i.mtime, i.size, i.linkname, i.devmajor, i.devminor,
                tuple(sorted(self.xattrs.items())), self.sha256)


def index_tar(path, epoch, progress=None):
    """Read a tarball: [(Entry)] in path order, without the data.
    progress(bytes), if given, hears how far into the tarball it is."""
    entries = {}
    with tarfile.open(path, "r:") as tf:
        for info in tf:
            if progress:
                progress(info.offset_data + info.size)
            name = clean_name(info.name)
            if not name or excluded(name):
                continue
            e = Entry()
            e.name = name
            e.info = info
            e.xattrs = {k: v for k, v in info.pax_headers.items() if k.startswith("SCHILY.xattr.")}
            info.mtime = min(int(info.mtime), epoch)
            if info.islnk():
                info.linkname = clean_name(info.linkname)
            e.sha256 = None
            if info.isreg():
                h = hashlib.sha256()
                f = tf.extractfile(info)
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
                e.sha256 = h.hexdigest()
            entries[name] = e
    return entries


def write_tar(out_path, src_path, entries, whiteouts=(), progress=None):
    """Write entries (taking data from the tarball src_path) and whiteout
    names into a new tarball: sorted, numeric owners, PAX format with only
    the extended headers that carry meaning. progress(bytes), if given,
    hears how much has been written."""
    items = [(path_key(e.name), e) for e in entries] + [(path_key(w), w) for w in whiteouts]
    items.sort(key=lambda kv: kv[0])
    written = set()
    with open(src_path, "rb") as srcf, open(out_path + ".part", "wb") as outf:
        src = tarfile.open(fileobj=srcf, mode="r:") if src_path else None
        out = tarfile.open(fileobj=outf, mode="w:", format=tarfile.PAX_FORMAT, encoding="utf-8")
        for _, e in items:
            if isinstance(e, str):
                ti = tarfile.TarInfo(e)
                ti.type, ti.mode, ti.mtime, ti.size = tarfile.REGTYPE, 0o644, 0, 0
                ti.uname = ti.gname = ""
                out.addfile(ti)
                continue
            src_info = e.info
            ti = tarfile.TarInfo(e.name)
            for a in ("type", "mode", "uid", "gid", "mtime", "linkname", "devmajor", "devminor"):
                setattr(ti, a, getattr(src_info, a))
            ti.uname = ti.gname = ""
            ti.pax_headers = dict(e.xattrs)
            if ti.type == tarfile.LNKTYPE and ti.linkname not in written:
                raise RuntimeError("hard link %s comes before its target %s" % (e.name, ti.linkname))
            if src_info.isreg():
                ti.size = src_info.size
                out.addfile(ti, src.extractfile(src_info))
            else:
                ti.size = 0
                out.addfile(ti)
            written.add(e.name)
            if progress:
                progress(outf.tell())
        out.close()
        if src:
            src.close()
    os.rename(out_path + ".part", out_path)


def diff_layer(base, full):
    """What turns the tree `base` into `full`: the entries that are new or
    changed (with the directories above them, and the targets of hard links
    among them), and whiteouts for the paths that went away."""
    keep = set()
    for name, e in full.items():
        b = base.get(name)
        if b is None or b.sig() != e.sig():
            keep.add(name)
    for name in list(keep):
        parts = name.split("/")
        for i in range(1, len(parts)):
            keep.add("/".join(parts[:i]))
    for name in list(keep):
        if full[name].info.islnk():
            keep.add(full[name].info.linkname)
    removed = [n for n in base if n not in full]
    removed_set = set(removed)
    whiteouts = []
    for n in removed:
        parent, _, leaf = n.rpartition("/")
        if parent and parent in removed_set:
            continue  # the parent's whiteout covers it
        whiteouts.append((parent + "/" if parent else "") + ".wh." + leaf)
        if parent:
            keep.add(parent)
            pp = parent.split("/")
            for i in range(1, len(pp)):
                keep.add("/".join(pp[:i]))
    return [full[n] for n in keep if n in full], whiteouts


def apply_layer(tree, layer_entries, whiteouts):
    """{name: sig} of `tree` with a layer applied, as an OCI runtime would."""
    result = {n: e.sig() for n, e in tree.items()}

    def drop(prefix):
        for n in [n for n in result if n == prefix or n.startswith(prefix + "/")]:
            del result[n]

    for w in whiteouts:
        parent, _, leaf = w.rpartition("/")
        drop((parent + "/" if parent else "") + leaf[len(".wh."):])
    for e in layer_entries:
        old = result.get(e.name)
        if old is not None and old[0] == tarfile.DIRTYPE and not e.info.isdir():
            drop(e.name)
        result[e.name] = e.sig()
    return result


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def installed_packages(rootfs_tar, entries):
    """NAME=VERSION of every installed package, from var/lib/dpkg/status."""
    e = entries.get("var/lib/dpkg/status")
    if e is None:
        return []
    with tarfile.open(rootfs_tar, "r:") as tf:
        text = tf.extractfile(tf.getmember(e.name)).read().decode("utf-8", "replace")
    pkgs = []
    for para in text.split("\n\n"):
        fields = {}
        for line in para.splitlines():
            if line[:1] not in (" ", "\t") and ":" in line:
                k, v = line.split(":", 1)
                fields[k] = v.strip()
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            pkgs.append("%s=%s" % (fields["Package"], fields.get("Version", "")))
    return sorted(pkgs)


# ---------------------------------------------------------------------------
# mmdebstrap


def mmdebstrap_argv(recipe, base_rootfs, mirrors, debs, target):
    """The mmdebstrap command line that builds a recipe's whole tree into the
    tarball `target`. With base_rootfs, the base's tree is unpacked first and
    only this recipe's packages are installed on it."""
    q = shlex.quote
    argv = ["mmdebstrap", "--mode=root", "--format=tar", "--quiet",
            "--aptopt=Acquire::Languages \"none\"",
            # Keep downloaded packages for sync-out into the cache.
            "--skip=essential/unlink"]
    argv += ["--dpkgopt=%s" % o for o in recipe["dpkg_opt"]]
    setup = ['mkdir -p "$1"/var/cache/apt/archives/', "sync-in %s /var/cache/apt/archives/" % q(debs)]
    customize = []
    if base_rootfs:
        argv.append("--variant=custom")
        setup.insert(0, "tar-in %s /" % q(base_rootfs))
        if recipe["packages"]:
            customize.append('chroot "$1" apt-get install --yes --no-install-recommends -o Dpkg::Use-Pty=0 %s'
                             % " ".join(q(p) for p in recipe["packages"]))
    else:
        argv.append("--variant=%s" % recipe["variant"])
        if recipe["packages"]:
            argv.append("--include=%s" % ",".join(recipe["packages"]))
    for path in recipe["remove"]:
        # Inside the tree, so that a symbolic link on the way resolves there.
        customize.append('chroot "$1" rm -rf %s' % q(path))
    for src, dest, mode in recipe["add"]:
        parent = os.path.dirname(dest)
        customize.append('chroot "$1" mkdir -p %s' % q(parent))
        customize.append("upload %s %s" % (q(os.path.join(recipe["dir"], src)), q(dest)))
        customize.append('chroot "$1" chmod %o %s' % (mode, q(dest)))
    if recipe.get("workdir"):
        customize.append('chroot "$1" mkdir -p %s' % q(recipe["workdir"]))
    customize.append("sync-out /var/cache/apt/archives %s" % q(debs))
    # The host's resolv.conf and hostname are copied in for the build; the
    # runtime writes its own, and a layer must not depend on the build host.
    customize.append('rm -f "$1"/etc/resolv.conf "$1"/etc/hostname "$1"/var/cache/apt/archives/lock')
    customize.append('rm -rf "$1"/var/cache/apt/archives/partial "$1"/var/lib/apt/lists/auxfiles')
    customize.append('find "$1"/var/log -type f -delete')
    argv += ["--setup-hook=%s" % h for h in setup]
    argv += ["--customize-hook=%s" % h for h in customize]
    argv += [recipe["suite"], target] + mirrors
    return argv


def build_one(recipe, base, cache, debs, mirrors, epoch, key, progress):
    """Build one recipe on the result `base` (None for a recipe without
    BASE) into CACHE/NAME-KEY; return its info dict. progress(phase, bytes)
    hears how far it is."""
    name = recipe["name"]
    final = os.path.join(cache, "%s-%s" % (name, key[:16]))
    tmp = final + ".tmp-%d" % os.getpid()
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    os.makedirs(debs, exist_ok=True)
    full = os.path.join(tmp, "full.tar")
    argv = mmdebstrap_argv(recipe, base and base["rootfs"], mirrors, debs, full)
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), LC_ALL="C.UTF-8", TMPDIR="/var/tmp")
    log("building %s (%s)" % (name, " ".join(shlex.quote(a) for a in argv[:6]) + " ..."))
    t0 = time.monotonic()
    with open(os.path.join(tmp, "build.log"), "wb") as logf:
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                             cwd=tmp)
        while True:
            try:
                rc = p.wait(timeout=1)
                break
            except subprocess.TimeoutExpired:
                # mmdebstrap writes the tarball at its end: until then
                # this says only that it is alive.
                progress("mmdebstrap", os.path.getsize(full) if os.path.exists(full) else 0)
    if rc != 0:
        with open(os.path.join(tmp, "build.log"), errors="replace") as f:
            tail = "".join(f.readlines()[-30:])
        raise RuntimeError("mmdebstrap failed for %s (status %d); last lines:\n%s" % (name, rc, tail))
    t_mm = time.monotonic() - t0
    full_idx = index_tar(full, epoch, lambda n: progress("index", n))
    rootfs = os.path.join(tmp, "rootfs.tar")
    write_tar(rootfs, full, full_idx.values(), progress=lambda n: progress("rootfs", n))
    layer = os.path.join(tmp, "layer.tar")
    if base is None:
        os.link(rootfs, layer)
        layer_entries, whiteouts = list(full_idx.values()), []
    else:
        base_idx = index_tar(base["rootfs"], epoch, lambda n: progress("index", n))
        layer_entries, whiteouts = diff_layer(base_idx, full_idx)
        write_tar(layer, full, layer_entries, whiteouts, progress=lambda n: progress("layer", n))
        # The layer is right only if the base with it applied is the tree
        # mmdebstrap made.
        applied = apply_layer(base_idx, layer_entries, whiteouts)
        want = {n: e.sig() for n, e in full_idx.items()}
        if applied != want:
            bad = sorted(set(applied.items()) ^ set(want.items()))[:5]
            raise RuntimeError("%s: base + layer differs from the whole tree, e.g. %r" % (name, bad))
    os.unlink(full)
    t_total = time.monotonic() - t0
    digest = sha256_file(layer)
    chain_digests = (base["diff_ids"] if base else []) + ["sha256:" + digest]
    with open(os.path.join(tmp, "packages.txt"), "w") as f:
        f.write("".join(p + "\n" for p in installed_packages(rootfs, full_idx)))
    info = {
        "name": name, "key": key, "epoch": epoch, "mirrors": mirrors,
        "layer_digest": "sha256:" + digest, "layer_bytes": os.path.getsize(layer),
        "layer_entries": len(layer_entries), "layer_whiteouts": len(whiteouts),
        "rootfs_digest": "sha256:" + sha256_file(rootfs), "rootfs_bytes": os.path.getsize(rootfs),
        "diff_ids": chain_digests, "mmdebstrap_s": round(t_mm, 1), "build_s": round(t_total, 1),
        "base": base["name"] if base else None,
    }
    with open(os.path.join(tmp, "info.json"), "w") as f:
        json.dump(info, f, indent=1, sort_keys=True)
        f.write("\n")
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    return info


# LAYER-CODE-END

def layer_code():
    """The text between the LAYER-CODE markers of this file."""
    with open(os.path.abspath(__file__), "rb") as f:
        src = f.read()
    begin = re.search(rb"^# LAYER-CODE-BEGIN$", src, re.M)
    end = re.search(rb"^# LAYER-CODE-END$", src, re.M)
    if not begin or not end or end.start() < begin.end():
        raise RuntimeError("%s: the LAYER-CODE markers are missing" % __file__)
    return src[begin.end():end.start()]


def recipe_key(recipe, base_key, mirrors, epoch, tool_version, code):
    """sha256 of everything a recipe's layer depends on: what its recipe
    says about the tree (not ENV, USER, CMD or EXPOSE, which live only in
    the image config), its added files, its base's key, the code that makes
    layers, the mirrors, SOURCE_DATE_EPOCH, mmdebstrap and the machine."""
    h = hashlib.sha256()

    def feed(label, data):
        if isinstance(data, str):
            data = data.encode()
        h.update(b"%s %d\n" % (label.encode(), len(data)))
        h.update(data)

    feed("builder", code)
    tree = {k: recipe.get(k) for k in ("name", "base", "suite", "variant", "packages", "dpkg_opt", "remove",
                                        "workdir")}
    tree["add"] = [list(a) for a in recipe["add"]]
    feed("recipe", json.dumps(tree, sort_keys=True))
    for src, _, _ in sorted(recipe["add"]):
        with open(os.path.join(recipe["dir"], src), "rb") as f:
            feed("add " + src, f.read())
    feed("base", base_key or "")
    feed("mirrors", "\n".join(mirrors))
    feed("epoch", str(epoch))
    feed("tool", tool_version)
    feed("arch", os.uname().machine)
    return h.hexdigest()


def log(msg):
    sys.stderr.write("build-recipe: %s\n" % msg)
    sys.stderr.flush()


class Progress:
    """JSON progress lines on stdout, one object a line, each with "phase"
    and "bytes"; lines of the same phase at most twice a second unless
    `final`. Silent when not enabled."""

    def __init__(self, enabled):
        self.enabled = enabled
        self.last = (None, 0.0)
        self.image = None

    def __call__(self, phase, nbytes=0, final=False, **fields):
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and self.last[0] == phase and now - self.last[1] < 0.5:
            return
        self.last = (phase, now)
        obj = {"phase": phase, "bytes": int(nbytes)}
        if self.image and "image" not in fields:
            obj["image"] = self.image
        obj.update(fields)
        sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
        sys.stdout.flush()


# ---------------------------------------------------------------------------
# The OCI image: config, manifest, image layout and its tar form

MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
# image-spec annotations.md: ref ::= component ("/" component)*,
# component ::= alphanum (separator alphanum)*; "_" and "__" are also
# taken as separators, as image names (the daemon's, Docker's) allow them.
_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--|__)[A-Za-z0-9]+)*"
REF_RE = re.compile(r"^%s(?:/%s)*$" % (_COMPONENT, _COMPONENT))


class OutputError(Exception):
    pass


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def oci_image(chain_infos, config, epoch):
    """The image whose layers are those of chain_infos (bottom first):
    (config bytes, manifest bytes, [(digest, size, path) of each layer]).
    Nothing in it depends on when or where it is made."""
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    machine = os.uname().machine
    cfg = {"architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine),
           "os": "linux", "created": created, "config": config,
           "rootfs": {"type": "layers", "diff_ids": [i["layer_digest"] for i in chain_infos]},
           "history": [{"created": created, "created_by": "sandboxd recipe %s" % i["name"]} for i in chain_infos]}
    cfg_bytes = canonical(cfg)
    # Layers are plain tar: their digests are their diff_ids, and nothing
    # (a compressor's version or level) stands between the tree and them.
    layers = [(i["layer_digest"], i["layer_bytes"], i["layer_path"]) for i in chain_infos]
    manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
                "config": {"mediaType": MT_CONFIG, "digest": "sha256:" + hashlib.sha256(cfg_bytes).hexdigest(),
                           "size": len(cfg_bytes)},
                "layers": [{"mediaType": MT_LAYER, "digest": d, "size": n} for d, n, _ in layers]}
    return cfg_bytes, canonical(manifest), layers


def manifest_descriptor(man_bytes, tag):
    return {"mediaType": MT_MANIFEST, "digest": "sha256:" + hashlib.sha256(man_bytes).hexdigest(),
            "size": len(man_bytes), "annotations": {REF_NAME: tag}}


def _blob_path(out, digest):
    algo, _, hexd = digest.partition(":")
    return os.path.join(out, "blobs", algo, hexd)


def _put_file(src, dst):
    """dst gets src's bytes: a hard link where both are on one file system
    (blobs are never written in place), a copy elsewhere."""
    try:
        os.link(src, dst)
        return
    except FileExistsError:
        os.unlink(dst)
        os.link(src, dst)
        return
    except OSError:
        pass
    tmp = dst + ".part"
    shutil.copyfile(src, tmp)
    os.rename(tmp, dst)


def _write_atomic(path, data):
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def check_layout(out):
    """OUT must be missing, empty or an OCI image layout."""
    if os.path.lexists(out) and not os.path.isdir(out):
        raise OutputError("%s exists and is not a directory" % out)
    if os.path.isdir(out) and os.listdir(out) and not os.path.isfile(os.path.join(out, "oci-layout")):
        raise OutputError("%s is neither empty nor an OCI image layout (no oci-layout file)" % out)
    if not os.path.isdir(os.path.dirname(out.rstrip("/")) or "/"):
        raise OutputError("%s: no such directory" % os.path.dirname(out.rstrip("/")))


def write_layout(out, tag, image, progress):
    """Put the image into the OCI image layout OUT, named `tag`: OUT is
    made if missing; in an existing layout the image is added, replacing an
    earlier one of the same name, and blobs no manifest needs any more go.
    Returns the manifest descriptor."""
    cfg_bytes, man_bytes, layers = image
    check_layout(out)
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []}
    index_path = os.path.join(out, "index.json")
    if os.path.exists(index_path):
        try:
            with open(index_path, "rb") as f:
                index = json.loads(f.read())
            if not isinstance(index.get("manifests"), list):
                raise ValueError("no manifests array")
        except ValueError as e:
            raise OutputError("%s: not an OCI image index: %s" % (index_path, e))
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    total = sum(n for _, n, _ in layers) + len(cfg_bytes) + len(man_bytes)
    done = 0
    for digest, size, path in layers:
        dst = _blob_path(out, digest)
        if not (os.path.isfile(dst) and os.path.getsize(dst) == size):
            _put_file(path, dst)
        done += size
        progress("layout", done, total=total)
    for data in (cfg_bytes, man_bytes):
        _write_atomic(_blob_path(out, "sha256:" + hashlib.sha256(data).hexdigest()), data)
    desc = manifest_descriptor(man_bytes, tag)
    index["manifests"] = [m for m in index["manifests"]
                          if not (isinstance(m, dict) and (m.get("annotations") or {}).get(REF_NAME) == tag)]
    index["manifests"].append(desc)
    index["manifests"].sort(key=lambda m: ((m.get("annotations") or {}).get(REF_NAME, ""), m.get("digest", "")))
    index.setdefault("mediaType", MT_INDEX)
    _write_atomic(os.path.join(out, "oci-layout"), canonical({"imageLayoutVersion": "1.0.0"}))
    _write_atomic(index_path, canonical(index))
    _collect_garbage(out, index)
    progress("layout", total, total=total, final=True)
    return desc


def _collect_garbage(out, index):
    """Remove the blobs of images the index no longer names, when every
    manifest it names is one this code can read (an index of indexes, or
    a manifest that cannot be read, leaves every blob in place)."""
    keep = set()
    for m in index["manifests"]:
        if not isinstance(m, dict) or m.get("mediaType", MT_MANIFEST) != MT_MANIFEST:
            return
        try:
            with open(_blob_path(out, m["digest"]), "rb") as f:
                man = json.loads(f.read())
            keep.add(m["digest"])
            keep.add(man["config"]["digest"])
            keep.update(l["digest"] for l in man["layers"])
        except (OSError, ValueError, KeyError, TypeError):
            return
    d = os.path.join(out, "blobs", "sha256")
    for name in os.listdir(d):
        if "sha256:" + name not in keep:
            os.unlink(os.path.join(d, name))


def write_archive(path, tag, image, epoch, progress):
    """The same image layout as one tar file (skopeo's oci-archive:),
    byte-identical from one build to the next."""
    cfg_bytes, man_bytes, layers = image
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [manifest_descriptor(man_bytes, tag)]}
    members = [("blobs", None), ("blobs/sha256", None)]
    blobs = {d.split(":", 1)[1]: (n, p, None) for d, n, p in layers}
    for data in (cfg_bytes, man_bytes):
        blobs[hashlib.sha256(data).hexdigest()] = (len(data), None, data)
    members += [("blobs/sha256/" + h, blobs[h]) for h in sorted(blobs)]
    members += [("index.json", (None, None, canonical(index))),
                ("oci-layout", (None, None, canonical({"imageLayoutVersion": "1.0.0"})))]
    total = sum(n for n, _, _ in blobs.values())
    done = 0
    tmp = path + ".part"
    with open(tmp, "wb") as f, tarfile.open(fileobj=f, mode="w:", format=tarfile.PAX_FORMAT) as tf:
        for name, what in members:
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = epoch, 0, 0, "", ""
            if what is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
                continue
            _, src, data = what
            ti.mode = 0o644
            if data is not None:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                ti.size = os.path.getsize(src)
                with open(src, "rb") as sf:
                    tf.addfile(ti, sf)
                done += ti.size
                progress("archive", done, total=total)
    os.rename(tmp, path)
    progress("archive", total, total=total, final=True)


# ---------------------------------------------------------------------------
# The cache and the build of a chain of recipes


def prune(cache, name, keep):
    """Old results of a recipe go once a new one is made: each is a
    gigabyte or more. The most recently used other one stays, for a tree
    that goes back and forth between two versions."""
    others = []
    for entry in os.listdir(cache):
        path = os.path.join(cache, entry)
        m = re.match(r"^[0-9a-f]{16}(\.tmp-\d+)?$", entry[len(name) + 1:])
        if not entry.startswith(name + "-") or not m or path == keep or not os.path.isdir(path):
            continue
        if m.group(1):
            # An unfinished build: its process is gone, as this one holds
            # the cache's lock.
            shutil.rmtree(path, ignore_errors=True)
        else:
            others.append((os.stat(path).st_mtime, path))
    for _, path in sorted(others)[:-1]:
        shutil.rmtree(path, ignore_errors=True)


def build(recipe_dir, cache, epoch, force=False, debs=None, progress=None):
    """Build a recipe and its bases (or find them in the cache); return the
    recipes and their info dicts, bottom first, with paths filled in. The
    cache stays locked until the process ends or release() is called, so
    that no other build prunes a result while it is being read."""
    progress = progress or Progress(False)
    chain = recipe_chain(recipe_dir)
    progress("resolve", images=[r["name"] for r in chain], final=True)
    try:
        mirrors = host_mirrors(chain[0]["suite"])
    except FileNotFoundError:
        raise MirrorError("apt-get is not installed")
    if shutil.which("mmdebstrap") is None:
        raise RuntimeError("mmdebstrap is not installed (apt-get install mmdebstrap)")
    tool = subprocess.run(["mmdebstrap", "--version"], capture_output=True, text=True).stdout.strip()
    code = layer_code()
    os.makedirs(cache, exist_ok=True)
    global _lock
    _lock = open(os.path.join(cache, ".lock"), "w")
    fcntl.flock(_lock, fcntl.LOCK_EX)  # one build at a time per cache
    results = []
    key = None
    mirror_checked = False
    for recipe in chain:
        key = recipe_key(recipe, key, mirrors, epoch, tool, code)
        d = os.path.join(cache, "%s-%s" % (recipe["name"], key[:16]))
        info_path = os.path.join(d, "info.json")
        progress.image = recipe["name"]
        if (force and recipe is chain[-1]) or not os.path.exists(info_path):
            if not mirror_checked:
                progress("mirror", final=True)
                check_mirror(mirrors)
                mirror_checked = True
            build_one(recipe, results[-1] if results else None, cache, debs or os.path.join(cache, "debs"),
                      mirrors, epoch, key, progress)
            prune(cache, recipe["name"], d)
            state = "built"
        else:
            log("%s: cached in %s" % (recipe["name"], d))
            os.utime(d)
            state = "cached"
        with open(info_path) as f:
            info = json.load(f)
        info["dir"] = d
        info["rootfs"] = os.path.join(d, "rootfs.tar")
        info["layer_path"] = os.path.join(d, "layer.tar")
        info["cached"] = state == "cached"
        results.append(info)
        progress(state, info["layer_bytes"], digest=info["layer_digest"], final=True)
    progress.image = None
    return chain, results


_lock = None


def release():
    global _lock
    if _lock:
        _lock.close()
        _lock = None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 usage="%(prog)s [options] RECIPE_DIR")
    ap.add_argument("recipe", help="recipe directory, e.g. images/agent")
    ap.add_argument("--oci-layout", metavar="DIR", help="write the image into the OCI image layout DIR")
    ap.add_argument("--oci-archive", metavar="FILE", help="write the image as an OCI image layout in one tar file")
    ap.add_argument("--tag", metavar="NAME", help="the image's name in the layout (default: the recipe's)")
    out = ap.add_mutually_exclusive_group()
    out.add_argument("--progress", action="store_true", help="JSON progress lines on stdout")
    out.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--cache", default=os.environ.get("SANDBOXD_IMAGE_CACHE", DEFAULT_CACHE))
    ap.add_argument("--epoch", type=int, default=int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_EPOCH)))
    ap.add_argument("--force", action="store_true", help="build the recipe again even when cached (not its bases)")
    ap.add_argument("--debs", help="where downloaded packages are kept (default CACHE/debs)")
    ap.add_argument("--check", action="store_true", help="only read and check the recipe")
    a = ap.parse_args()
    if a.tag is not None and not (a.oci_layout or a.oci_archive):
        ap.error("--tag names the image in --oci-layout or --oci-archive")
    progress = Progress(a.progress)

    def fail(status, msg):
        log(msg)
        progress("error", final=True, status=status, message=msg)
        return status

    try:
        chain = recipe_chain(a.recipe)
        tag = a.tag if a.tag is not None else chain[-1]["name"]
        if not REF_RE.match(tag) or len(tag) > 255:
            raise RecipeError("--tag %r is not a valid image reference name" % tag)
        config = image_config(chain)
        # A bad output is refused before minutes of building.
        if a.oci_layout:
            check_layout(os.path.abspath(a.oci_layout))
        if a.oci_archive and not os.path.isdir(os.path.dirname(os.path.abspath(a.oci_archive))):
            raise OutputError("%s: no such directory" % os.path.dirname(os.path.abspath(a.oci_archive)))
        if a.oci_archive and os.path.isdir(a.oci_archive):
            raise OutputError("%s is a directory" % a.oci_archive)
        if a.check:
            print(json.dumps(config, indent=1, sort_keys=True))
            return 0
        _, results = build(a.recipe, os.path.abspath(a.cache), a.epoch, a.force,
                           a.debs and os.path.abspath(a.debs), progress)
        image = oci_image(results, config, a.epoch)
        top = results[-1]
        top["config_digest"] = "sha256:" + hashlib.sha256(image[0]).hexdigest()
        top["manifest_digest"] = "sha256:" + hashlib.sha256(image[1]).hexdigest()
        top["image_bytes"] = sum(r["layer_bytes"] for r in results)
        if a.oci_layout:
            write_layout(os.path.abspath(a.oci_layout), tag, image, progress)
            top["oci_layout"] = os.path.abspath(a.oci_layout)
        if a.oci_archive:
            write_archive(os.path.abspath(a.oci_archive), tag, image, a.epoch, progress)
            top["oci_archive"] = os.path.abspath(a.oci_archive)
        release()
    except RecipeError as e:
        return fail(1, str(e))
    except MirrorError as e:
        return fail(EX_MIRROR, str(e))
    except (RuntimeError, OutputError, OSError) as e:
        return fail(1, str(e))
    if a.progress:
        progress("done", top["image_bytes"], final=True, name=tag, digest=top["manifest_digest"],
                 config=top["config_digest"], layers=top["diff_ids"],
                 **{k: top[k] for k in ("oci_layout", "oci_archive") if k in top})
    elif a.json:
        print(json.dumps(results, indent=1, sort_keys=True))
    else:
        for r in results:
            print("%s %s %s" % (r["name"], r["layer_digest"], r["dir"]))
        if a.oci_layout or a.oci_archive:
            print("%s %s %s" % (tag, top["manifest_digest"], a.oci_layout or a.oci_archive))
    return 0


if __name__ == "__main__":
    sys.exit(main())
