// Where received files go. With the File System Access API (desktop
// Chromium on https or localhost) the person picks a folder once per offer
// and each file streams to disk; the browser keeps the bytes in a swap file
// and only gives the file its name on close(), which the page calls after
// the SHA-256 matched. Elsewhere (phones, plain-http LAN pages) each
// verified file is handed to the browser as a download of a Blob: Chromium
// keeps large Blobs on disk, other browsers may hold them in memory
// (see "Web client" in docs/PROTOCOL.md).

// canPickFolder says whether files can stream into a folder the person picks.
export function canPickFolder() {
  return typeof window.showDirectoryPicker === 'function' && window.isSecureContext &&
    new URLSearchParams(location.search).get('save') !== 'download';
}

// folderSink asks for a folder (call it from a click: the picker needs a
// user gesture) and writes each file below it, keeping the offer's paths.
export async function folderSink() {
  const root = await window.showDirectoryPicker({ id: 'peerdrop', mode: 'readwrite' });
  const dirs = new Map([['', root]]);
  const taken = new Map(); // folder handle -> name keys in use there
  const dirOf = async (path) => {
    if (dirs.has(path)) return dirs.get(path);
    const i = path.lastIndexOf('/');
    const parent = await dirOf(i < 0 ? '' : path.slice(0, i));
    const d = await parent.getDirectoryHandle(path.slice(i + 1), { create: true });
    dirs.set(path, d);
    return d;
  };
  return {
    kind: 'folder',
    name: root.name,
    async open(entry) {
      const i = entry.path.lastIndexOf('/');
      const dir = await dirOf(i < 0 ? '' : entry.path.slice(0, i));
      if (!taken.has(dir)) {
        const keys = new Set();
        for await (const n of dir.keys()) keys.add(nameKey(n));
        taken.set(dir, keys);
      }
      const name = await freeName(dir, entry.path.slice(i + 1), taken.get(dir));
      const handle = await dir.getFileHandle(name, { create: true });
      const w = await handle.createWritable({ keepExistingData: false });
      return {
        write: (chunk) => w.write(chunk),
        close: () => w.close(),
        async abort() {
          await w.abort();
          try { await dir.removeEntry(name); } catch { /* nothing there */ }
        },
      };
    },
  };
}

// nameKey is NameKey of transfer/names.go as near as the browser gets: NFC
// and case folding ("café" in NFC and NFD, "straße" and "STRASSE" are one
// name). Upper- then lower-casing folds "ß" to "ss" as full case folding does.
export function nameKey(name) {
  return name.normalize('NFD').toUpperCase().toLowerCase().normalize('NFC');
}

// freeName never replaces a file, nor takes a name that looks like one in
// the folder (taken holds their keys): name, "name (1).ext", ...
async function freeName(dir, name, taken) {
  const dot = name.lastIndexOf('.');
  const [base, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
  for (let k = 0; k < 10000; k++) {
    const candidate = k === 0 ? name : `${base} (${k})${ext}`;
    if (taken.has(nameKey(candidate))) continue;
    try {
      await dir.getFileHandle(candidate);
    } catch (e) {
      if (e.name === 'NotFoundError') {
        taken.add(nameKey(candidate));
        return candidate;
      }
      if (e.name === 'TypeMismatchError') continue; // a folder of that name
      throw e;
    }
  }
  throw new Error('no free name');
}

// downloadSink keeps each file as a list of Blobs (merged every 16 MiB, so
// Chromium can page them out to disk) and, once verified, hands it to the
// browser as a download named after the file's last path part.
export function downloadSink(onSaved) {
  return {
    kind: 'download',
    async open(entry) {
      let parts = [];
      let pending = [];
      let pendingBytes = 0;
      const merge = () => {
        if (pending.length) parts.push(new Blob(pending));
        pending = [];
        pendingBytes = 0;
      };
      return {
        write(chunk) {
          pending.push(chunk);
          pendingBytes += chunk.length;
          if (pendingBytes >= 16 * 1024 * 1024) merge();
        },
        close() {
          merge();
          const blob = new Blob(parts, { type: 'application/octet-stream' });
          parts = [];
          const name = entry.path.slice(entry.path.lastIndexOf('/') + 1);
          const url = URL.createObjectURL(blob);
          const a = document.createElement('a');
          a.href = url;
          a.download = name;
          a.style.display = 'none';
          document.body.append(a);
          a.click();
          a.remove();
          setTimeout(() => URL.revokeObjectURL(url), 120000);
          onSaved?.(entry, blob);
        },
        abort() { parts = []; pending = []; },
      };
    },
  };
}
