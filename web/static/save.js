import { makeZip } from './vendor/client-zip.js';

// Where received files go. With the File System Access API (desktop
// Chromium on https or localhost) the person picks a folder once per offer
// and each file streams to disk; the browser keeps the bytes in a swap file
// and only gives the file its name on close(), which the page calls after
// the SHA-256 matched. Elsewhere (phones, plain-http LAN pages) a verified
// file is handed to the browser as a download of a Blob, and an offer of
// several files as one ZIP archive of them: Chromium keeps large Blobs on
// disk, other browsers may hold them in memory (see "Web client" in
// docs/PROTOCOL.md).

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

// blobWriter keeps a file's bytes as a list of Blobs, merged every 16 MiB
// so Chromium can page them out to disk.
function blobWriter() {
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
    blob(type) {
      merge();
      const b = new Blob(parts, { type });
      parts = [];
      return b;
    },
    drop() { parts = []; pending = []; },
  };
}

// download hands blob to the browser as a download called name.
function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 120000);
}

// downloadSink hands each file, once verified, to the browser as a
// download named after the file's last path part. For an offer of one file.
export function downloadSink(onSaved) {
  return {
    kind: 'download',
    async open(entry) {
      const file = blobWriter();
      return {
        write: file.write,
        close() {
          const blob = file.blob('application/octet-stream');
          download(entry.path.slice(entry.path.lastIndexOf('/') + 1), blob);
          onSaved?.(entry, blob);
        },
        abort: file.drop,
      };
    },
  };
}

// zipSink saves an offer of several files as ONE download, a ZIP archive
// called name: browsers throttle or silently block a page that starts many
// downloads, so one per file loses files. The archive is built as the files
// arrive by client-zip (vendor/, stored, not compressed; Zip64 when
// needed), keeping the offer's paths; a file goes into it only once its
// SHA-256 matched. finish(), at the end of the offer (done, cancelled or
// the connection lost), hands the archive to the browser with every file
// verified by then; none verified, no download. onError hears a failure
// to build it, in words.
export function zipSink(name, onError) {
  const ready = []; // verified files the archive has not taken yet
  let wake = null;
  let ended = false;
  let count = 0;
  async function* files() {
    for (;;) {
      if (ready.length) { yield ready.shift(); continue; }
      if (ended) return;
      await new Promise((r) => { wake = r; });
      wake = null;
    }
  }
  const nudge = () => wake?.();
  // Response.blob() reads the archive as it is written, so each file's
  // Blobs are let go once the archive holds them.
  const archive = new Response(makeZip(files())).blob();
  archive.catch(() => { /* reported by finish */ });
  return {
    kind: 'zip',
    name,
    async open(entry) {
      const file = blobWriter();
      return {
        write: file.write,
        close() {
          ready.push({ name: entry.path, lastModified: new Date(entry.mtime > 0 ? entry.mtime * 1000 : Date.now()), input: file.blob() });
          count++;
          nudge();
        },
        abort: file.drop,
      };
    },
    async finish() {
      ended = true;
      nudge();
      try {
        const blob = await archive;
        if (count > 0) download(name, new Blob([blob], { type: 'application/zip' }));
      } catch (e) {
        onError?.(`could not build ${name}: ${e.message}`);
      }
    },
    abort() {
      ended = true;
      ready.length = 0;
      nudge();
    },
  };
}

// zipName names the archive of an offer: its folder when every file is in
// one, else "N files from SENDER". Browsers clean what a file name may not
// hold; the name is kept short and free of path separators here too.
export function zipName(entries, from) {
  const files = entries.filter((e) => !e.dir);
  const tops = new Set(files.map((e) => (e.path.includes('/') ? e.path.slice(0, e.path.indexOf('/')) : '')));
  let base = tops.size === 1 && !tops.has('') ? [...tops][0] : `${files.length} files from ${from || 'a device'}`;
  base = base.replace(/[\\/:*?"<>|\u0000-\u001f\u007f]/g, '_').trim().slice(0, 80) || 'files';
  return `${base}.zip`;
}
