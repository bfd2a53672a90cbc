import { generateKeyPair, SCRYPT_N_VALUES, type ScryptN } from '../cosign/index.js';
import { readAll, UsageError, type CliIo } from './io.js';
import { envValue, parseCommandLine, reportErrors } from './command-support.js';

const options = {
  'output-key-prefix': { type: 'string' },
  'scrypt-n': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const generateKeyPairUsage = `Usage: bundle-promoter generate-key-pair [--output-key-prefix cosign] [--scrypt-n N]

Writes an ECDSA P-256 key pair in cosign's formats: <prefix>.key (ENCRYPTED SIGSTORE PRIVATE KEY, mode
0600) and <prefix>.pub. Existing files are never overwritten. The password comes from $COSIGN_PASSWORD,
else from standard input (not a terminal; the trailing newline is dropped); it may be empty.

      --output-key-prefix P    file name prefix (default cosign)
      --scrypt-n N             scrypt work factor: 65536 (default, cosign >= 2.2), 32768 (readable by cosign <= 2.1), 131072`;

export async function run(argv: string[], io: CliIo): Promise<number> {
  return reportErrors(io, generateKeyPairUsage, async () => {
    const parsed = parseCommandLine({ args: argv, options, allowPositionals: false, strict: true }, generateKeyPairUsage, io);
    if (parsed === undefined) return 0;
    const { values } = parsed;
    let scryptN: ScryptN | undefined;
    if (values['scrypt-n'] !== undefined) {
      const n = Number(values['scrypt-n']);
      if (!SCRYPT_N_VALUES.includes(n as ScryptN)) throw new UsageError(`--scrypt-n must be one of ${SCRYPT_N_VALUES.join(', ')}`);
      scryptN = n as ScryptN;
    }
    let password = envValue(io, 'COSIGN_PASSWORD');
    if (password === undefined) {
      if ((io.stdin as { isTTY?: boolean }).isTTY === true) throw new UsageError('set $COSIGN_PASSWORD or pipe the password on standard input');
      password = (await readAll(io.stdin, io.signal)).replace(/\r?\n$/, '');
    }
    const prefix = values['output-key-prefix'] ?? 'cosign';
    const pair = await generateKeyPair(password, { outputKeyPrefix: prefix, ...(scryptN === undefined ? {} : { scryptN }) });
    io.stderr.write(`Private key written to ${pair.files?.privateKey ?? ''}\nPublic key written to ${pair.files?.publicKey ?? ''}\n`);
    return 0;
  });
}
