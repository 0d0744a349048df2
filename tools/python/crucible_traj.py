"""Read crucible's trajectory files and training exports from Python.

Needs only the msgpack package (Debian: python3-msgpack). With numpy installed, token ids,
masks and log-probs come back as numpy arrays that share memory with the file's bytes
(np.frombuffer, zero copies); without it, as array.array.

    from crucible_traj import read_samples, read_trees, read_records, tree_sample_indices

    for s in read_samples("samples.msgpack"):      # crucible export --format tokens
        s["input_ids"], s["loss_mask"], s["logprobs"], s["reward"], s["group_id"]

    for t in read_trees("tree.msgpack"):          # crucible export --format tree
        for sample in t["samples"]:
            idx = tree_sample_indices(t, sample)  # the sample's tokens, in order
            ids = t["input_ids"][idx]             # (numpy fancy indexing)

    for rec in read_records("run/e1.traj"):       # the trajectory itself, record by record
        rec["type"], rec["episode"], rec["seq"]

The formats are specified in docs/trajectory-format.md. Run `python3 crucible_traj.py --help`
for the command-line summary this file also offers.
"""

import array
import json
import struct
import sys

import msgpack

try:
    import numpy as np
except ImportError:  # numpy is optional
    np = None

MAGIC = b"\x89CRUTRJ\n"
HEADER_LEN = 16
MAX_RECORD = 64 << 20

# Which bins hold which element type (the same table the C reader uses).
_I32 = {"prompt", "completion", "top_ids", "input_ids", "position_ids", "parent"}
_F32 = {"logprobs", "top_logprobs"}
_U8 = {"loss_mask"}


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """CRC32C (Castagnoli) of DATA, as the frames use. Pure Python: slow, but exact."""
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _array(buf, kind):
    """A little-endian bin as an array of int32 ('i'), float32 ('f') or uint8 ('B')."""
    if np is not None:
        dtype = {"i": "<i4", "f": "<f4", "B": "u1"}[kind]
        return np.frombuffer(buf, dtype=dtype)
    a = array.array(kind)
    a.frombytes(bytes(buf))
    if kind != "B" and sys.byteorder == "big":
        a.byteswap()
    return a


def _decode_bins(obj, key=None):
    if isinstance(obj, (bytes, bytearray, memoryview)):
        if key in _I32:
            return _array(obj, "i")
        if key in _F32:
            return _array(obj, "f")
        if key in _U8:
            return _array(obj, "B")
        return bytes(obj)
    if isinstance(obj, dict):
        return {k: _decode_bins(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode_bins(v, key) for v in obj]
    return obj


def _stream(path):
    with open(path, "rb") as f:
        unpacker = msgpack.Unpacker(f, raw=False, max_buffer_size=MAX_RECORD * 2)
        for obj in unpacker:
            if not isinstance(obj, dict):
                raise ValueError("%s: expected a msgpack map, got %s" % (path, type(obj).__name__))
            yield _decode_bins(obj)


def read_samples(path):
    """Yields the training samples of a `--format tokens` export, one dict per branch."""
    for s in _stream(path):
        n = len(s["input_ids"])
        if len(s["loss_mask"]) != n or len(s["logprobs"]) != n:
            raise ValueError("%s: sample %s/%s: arrays of different lengths"
                             % (path, s.get("episode_id"), s.get("branch")))
        yield s


def read_trees(path):
    """Yields the prefix trees of a `--format tree` export, one dict per group."""
    for t in _stream(path):
        n = len(t["input_ids"])
        for k in ("loss_mask", "logprobs", "position_ids", "parent"):
            if len(t[k]) != n:
                raise ValueError("%s: group %s: %s has %d entries for %d tokens"
                                 % (path, t.get("group_id"), k, len(t[k]), n))
        yield t


def tree_sample_indices(tree, sample):
    """The packed indices of SAMPLE's tokens in TREE, first to last (walks the parents)."""
    parent = tree["parent"]
    out = []
    at = int(sample["last"])
    while at >= 0:
        out.append(at)
        at = int(parent[at])
    out.reverse()
    if len(out) != sample["length"]:
        raise ValueError("sample %s/%s: the tree gives %d tokens, the sample has %d"
                         % (sample["episode_id"], sample["branch"], len(out), sample["length"]))
    return out


def read_records(path, check_crc=True):
    """Yields the records of a trajectory file as dicts. A damaged tail raises ValueError
    after the intact records (with the byte offset), as `crucible verify` reports it."""
    with open(path, "rb") as f:
        head = f.read(HEADER_LEN)
        if len(head) < HEADER_LEN or head[:8] != MAGIC:
            raise ValueError("%s: not a crucible trajectory" % path)
        version = struct.unpack("<I", head[8:12])[0]
        if version != 1:
            raise ValueError("%s: trajectory format version %d (this reader knows 1)"
                             % (path, version))
        off = HEADER_LEN
        while True:
            frame = f.read(8)
            if not frame:
                return
            if len(frame) < 8:
                raise ValueError("%s: torn tail at byte %d" % (path, off))
            length, crc = struct.unpack("<II", frame)
            if length == 0 or length > MAX_RECORD:
                raise ValueError("%s: bad record length %d at byte %d" % (path, length, off))
            payload = f.read(length)
            if len(payload) < length:
                raise ValueError("%s: torn tail at byte %d" % (path, off))
            if check_crc and crc32c(payload) != crc:
                raise ValueError("%s: bad checksum at byte %d" % (path, off))
            rec = _decode_bins(msgpack.unpackb(payload, raw=False))
            rec["offset"] = off
            yield rec
            off += 8 + length


def _digest(ids, mask, logprobs):
    """A summary that another implementation can reproduce exactly."""
    return {
        "n": len(ids),
        "ids_sum": int(sum(int(x) for x in ids)),
        "sampled": int(sum(int(x) for x in mask)),
        "logprob_sum": round(float(sum(float(x) for x in logprobs)), 3),
    }


def _summary(kind, path):
    out = []
    if kind == "tokens":
        for s in read_samples(path):
            d = _digest(s["input_ids"], s["loss_mask"], s["logprobs"])
            d.update(episode=s["episode_id"], branch=s["branch"], reward=s["reward"])
            out.append(d)
    elif kind == "tree":
        for t in read_trees(path):
            for sm in t["samples"]:
                idx = tree_sample_indices(t, sm)
                d = _digest([t["input_ids"][i] for i in idx], [t["loss_mask"][i] for i in idx],
                            [t["logprobs"][i] for i in idx])
                d.update(episode=sm["episode_id"], branch=sm["branch"], reward=sm["reward"])
                out.append(d)
    elif kind == "records":
        out = [{"type": r["type"], "episode": r.get("episode"), "seq": r.get("seq")}
               for r in read_records(path)]
    else:
        raise SystemExit("unknown kind %r (tokens, tree or records)" % kind)
    out.sort(key=lambda d: (str(d.get("episode")), d.get("branch", 0), d.get("seq", 0)))
    return out


def main(argv):
    if len(argv) != 3 or argv[1] not in ("tokens", "tree", "records"):
        print("usage: crucible_traj.py tokens|tree|records FILE\n\n"
              "Prints a JSON summary of a tokens or tree export (per sample: token count, sum of\n"
              "ids, sampled tokens, sum of log-probs, reward) or of a trajectory's records.",
              file=sys.stderr)
        return 2
    json.dump(_summary(argv[1], argv[2]), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
