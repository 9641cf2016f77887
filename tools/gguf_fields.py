"""Reading and copying GGUF metadata with gguf-py: shared by the scripts that derive model variants and the checks."""
import os

from gguf import GGUFReader, GGUFValueType as V

_READERS = {}


def reader(path):
    """gguf-py's reader of a file, once per file as it stands: it parses every vocabulary string (seconds for a
    vocabulary of 50,000 tokens or more), and a check may read one file several times."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
    if key not in _READERS:
        _READERS[key] = GGUFReader(path)
    return _READERS[key]


def field_value(field):
    """A GGUFReader field's value in the form GGUFWriter.add_key_value takes: (value, type, sub_type)."""
    t = field.types[0]
    if t == V.ARRAY:
        sub = field.types[-1]
        if sub == V.STRING:
            return [bytes(field.parts[i]) for i in field.data], t, sub
        return [field.parts[i].tolist()[0] for i in field.data], t, sub
    if t == V.STRING:
        return bytes(field.parts[-1]), t, None
    return field.parts[-1].tolist()[0], t, None


def copy_metadata(reader, writer, replace=None):
    """Every key-value pair of `reader` except the GGUF.* pseudo-fields and general.architecture (the writer
    sets that), with the values in `replace` substituted."""
    replace = replace or {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        value, t, sub = field_value(field)
        writer.add_key_value(key, replace.get(key, value), t, sub_type=sub)
