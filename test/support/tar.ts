import { promisify } from 'node:util';
import { gunzip as gunzipCallback, gzip as gzipCallback, gzipSync } from 'node:zlib';
import { extract, pack } from 'tar-stream';

const gzipAsync = promisify(gzipCallback);
const gunzipAsync = promisify(gunzipCallback);

/** One tar entry for {@link packTar}. Anything goes, `../x` and absolute names included (hostile fixtures). */
export interface TarEntry {
  readonly name: string;
  /** @defaultValue 'file' */
  readonly type?: 'file' | 'directory' | 'symlink' | 'link';
  /** File content. @defaultValue empty */
  readonly content?: string | Uint8Array;
  /** @defaultValue 0o600 for files, 0o700 for directories (imgpkg's `mode & 0700`) */
  readonly mode?: number;
  /** Target of a symlink or hard link. */
  readonly linkname?: string;
}

/** A tar entry as read back by {@link readTar}. */
export interface ReadTarEntry {
  readonly name: string;
  readonly type: string;
  readonly mode: number;
  readonly content: Buffer;
}

/** Packs entries in the given order with tar-stream: uid/gid 0, mtime 0 (the epoch), no user names. */
export async function packTar(entries: readonly TarEntry[]): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    archive.on('end', resolve);
    archive.on('error', reject);
  });
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const content = type === 'file' ? Buffer.from(entry.content ?? '') : Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      archive.entry(
        {
          name: entry.name,
          type,
          mode: entry.mode ?? (type === 'directory' ? 0o700 : 0o600),
          mtime: new Date(0),
          uid: 0,
          gid: 0,
          size: content.length,
          ...(entry.linkname === undefined ? {} : { linkname: entry.linkname }),
        },
        content,
        (error) => (error ? reject(error) : resolve()),
      );
    });
  }
  archive.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** gzip at BestSpeed (level 1), as imgpkg compresses bundle layers. */
export function gzip(bytes: Uint8Array, level = 1): Promise<Buffer> {
  return gzipAsync(bytes, { level });
}

/** Gunzips (multi-member streams included) and lists every entry with its content. For assertions only. */
export async function readTar(gzipped: Uint8Array): Promise<ReadTarEntry[]> {
  const tar = await gunzipAsync(gzipped);
  const entries: ReadTarEntry[] = [];
  const extractor = extract();
  const done = (async () => {
    for await (const entry of extractor) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const { name, type, mode } = entry.header;
      entries.push({ name, type: type ?? 'file', mode: mode ?? 0, content: Buffer.concat(chunks) });
    }
  })();
  extractor.end(tar);
  await done;
  return entries;
}

/**
 * A gzip bomb: a small gzip stream that inflates to a tar whose single file `entryName` holds `uncompressedBytes`
 * zero bytes (rounded up to whole MiB). Built from concatenated gzip members (legal gzip: Go's and zlib's readers
 * continue across members), so producing a 1 GiB bomb costs about 1 MiB of output and no 1 GiB buffer.
 */
export function gzipBomb(uncompressedBytes: number, entryName = 'bomb.bin'): Buffer {
  const MiB = 1024 * 1024;
  const chunks = Math.ceil(uncompressedBytes / MiB);
  const zeroMember = gzipSync(Buffer.alloc(MiB), { level: 9 });
  const members = [gzipSync(ustarHeader(entryName, chunks * MiB))];
  for (let i = 0; i < chunks; i++) members.push(zeroMember);
  members.push(gzipSync(Buffer.alloc(1024))); // end-of-archive blocks
  return Buffer.concat(members);
}

/** A ustar header for a regular file (mode 0600, mtime 0); sizes up to 8 GiB. */
function ustarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(512);
  header.write(name.slice(0, 100), 0, 'utf8');
  header.write('0000600\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148); // checksum field counts as spaces while summing
  header.write('0', 156);
  header.write('ustar\0' + '00', 257);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return header;
}
