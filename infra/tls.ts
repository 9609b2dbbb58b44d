/**
 * The local stack's TLS material (`lth up --tls`): a self-signed certificate authority made for one stack home,
 * a server certificate for 127.0.0.1 / localhost (MinIO and the Temporal TLS front present it) and a client
 * certificate (workers and commands present it to Temporal, which refuses connections without one).
 *
 * Guarantees:
 * - everything lives in <home>/tls: the folder is 0700 and every private key 0600, written atomically;
 * - ensureTlsMaterial() is idempotent: material that exists, parses, chains to its CA and stays valid for more than
 *   RENEW_BEFORE_DAYS is reused as is (workers keep trusting it across `lth down` / `lth up`); anything else
 *   (missing, unreadable, about to expire, from another CA) is made again as a whole, CA included;
 * - keys are ECDSA P-256, signatures SHA-256, each certificate restricted to its purpose (CA: certificate
 *   signing only; server: serverAuth; client: clientAuth), so a client certificate cannot serve and vice versa;
 * - nothing here touches the network; the CA's key never leaves <home>/tls.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

// @peculiar/x509 resolves its ASN.1 schemas through tsyringe, which needs the Reflect metadata API loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

import type { Log } from './detached';
import { tlsFiles, type TlsFiles } from './tls-files';

export { tlsFiles, type TlsFiles } from './tls-files';

// Node's Web Crypto is the DOM type the library declares, which this project's lib settings do not include.
x509.cryptoProvider.set(crypto.webcrypto as never);

type CryptoKey = crypto.webcrypto.CryptoKey;
type CryptoKeyPair = crypto.webcrypto.CryptoKeyPair;

/** Certificates this close to expiring are made again by the next `lth up --tls`. */
export const RENEW_BEFORE_DAYS = 30;
const VALID_DAYS = 825;
const DAY_MS = 86_400_000;

const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** The names the server certificate is valid for: what local clients dial. */
export const SERVER_NAMES: readonly x509.JsonGeneralName[] = [
  { type: 'ip', value: '127.0.0.1' },
  { type: 'ip', value: '::1' },
  { type: 'dns', value: 'localhost' },
];

async function newKeys(): Promise<CryptoKeyPair> {
  return (await crypto.webcrypto.subtle.generateKey(KEY_ALGORITHM, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = await crypto.webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

function validity(now: Date): { notBefore: Date; notAfter: Date } {
  // A minute back: a client whose clock is slightly behind must not see a certificate from the future.
  return {
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + VALID_DAYS * DAY_MS),
  };
}

function serial(): string {
  // Positive (high bit clear) and random, as RFC 5280 asks; 16 bytes.
  const b = crypto.randomBytes(16);
  b[0] = (b[0] as number) & 0x7f;
  return b.toString('hex');
}

async function leaf(
  ca: { cert: x509.X509Certificate; key: CryptoKey },
  subject: string,
  usage: x509.ExtendedKeyUsage,
  names: readonly x509.JsonGeneralName[],
  now: Date,
): Promise<{ cert: string; key: string }> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    issuer: ca.cert.subject,
    ...validity(now),
    signingAlgorithm: SIGNING_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([usage], false),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension([...names], false)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
}

/** The CA, a server and a client certificate, as PEM text. */
export async function makeTlsMaterial(
  now = new Date(),
): Promise<Record<Exclude<keyof TlsFiles, 'dir' | 'minioCertsDir'>, string>> {
  const caKeys = await newKeys();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=lth local CA ${crypto.randomBytes(4).toString('hex')}, O=lottery-temporal`,
    ...validity(now),
    signingAlgorithm: SIGNING_ALGORITHM,
    keys: caKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const ca = { cert: caCert, key: caKeys.privateKey };
  const server = await leaf(
    ca,
    'CN=127.0.0.1, O=lottery-temporal',
    x509.ExtendedKeyUsage.serverAuth,
    SERVER_NAMES,
    now,
  );
  const client = await leaf(
    ca,
    'CN=lth-worker, O=lottery-temporal',
    x509.ExtendedKeyUsage.clientAuth,
    [],
    now,
  );
  return {
    caCert: caCert.toString('pem'),
    caKey: await keyPem(caKeys.privateKey),
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
  };
}

/** Why the material in `f` cannot be reused, or null when it can. */
export async function tlsMaterialProblem(f: TlsFiles, now = new Date()): Promise<string | null> {
  let ca: x509.X509Certificate;
  try {
    ca = new x509.X509Certificate(fs.readFileSync(f.caCert, 'utf8'));
    for (const k of [f.caKey, f.serverKey, f.clientKey]) crypto.createPrivateKey(fs.readFileSync(k));
  } catch (err) {
    return `unreadable (${(err as Error).message})`;
  }
  const renewBy = new Date(now.getTime() + RENEW_BEFORE_DAYS * DAY_MS);
  for (const [what, file] of [
    ['CA', f.caCert],
    ['server certificate', f.serverCert],
    ['client certificate', f.clientCert],
  ] as const) {
    let cert: x509.X509Certificate;
    try {
      cert = new x509.X509Certificate(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      return `${what} unreadable (${(err as Error).message})`;
    }
    if (cert.notAfter < renewBy) return `${what} expires ${cert.notAfter.toISOString()}`;
    if (cert.notBefore > now) return `${what} is not valid before ${cert.notBefore.toISOString()}`;
    if (!(await cert.verify({ publicKey: ca.publicKey, signatureOnly: true })))
      return `${what} is not signed by ${f.caCert}`;
  }
  for (const [cert, key] of [
    [f.serverCert, f.serverKey],
    [f.clientCert, f.clientKey],
  ] as const) {
    const pub = new crypto.X509Certificate(fs.readFileSync(cert)).publicKey;
    const fromKey = crypto.createPublicKey(crypto.createPrivateKey(fs.readFileSync(key)));
    if (!pub.equals(fromKey)) return `${key} does not belong to ${cert}`;
  }
  return null;
}

function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

/**
 * The stack's TLS files: reused when sound, else made again (CA included); MinIO's certs folder kept in step.
 * `made` says the certificates are new, so that services still presenting or trusting old ones must restart.
 */
export async function ensureTlsMaterial(
  home: string,
  log: Log = () => {},
): Promise<{ files: TlsFiles; made: boolean }> {
  const f = tlsFiles(home);
  fs.mkdirSync(f.dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(f.dir, 0o700);
  const problem = fs.existsSync(f.caCert) ? await tlsMaterialProblem(f) : 'none yet';
  if (problem !== null) {
    const m = await makeTlsMaterial();
    writeAtomic(f.caKey, m.caKey, 0o600);
    writeAtomic(f.serverKey, m.serverKey, 0o600);
    writeAtomic(f.clientKey, m.clientKey, 0o600);
    writeAtomic(f.serverCert, m.serverCert, 0o644);
    writeAtomic(f.clientCert, m.clientCert, 0o644);
    // The CA last: its presence marks a complete set for the next call.
    writeAtomic(f.caCert, m.caCert, 0o644);
    log(
      problem === 'none yet'
        ? `tls: made a certificate authority and certificates in ${f.dir}`
        : `tls: made new certificates in ${f.dir} (the old ones: ${problem}); clients must trust the new ${f.caCert}`,
    );
  }
  // MinIO wants fixed names in one folder: copies, so that MinIO's folder never holds the CA's key.
  fs.mkdirSync(path.join(f.minioCertsDir, 'CAs'), { recursive: true, mode: 0o700 });
  writeAtomic(path.join(f.minioCertsDir, 'public.crt'), fs.readFileSync(f.serverCert, 'utf8'), 0o644);
  writeAtomic(path.join(f.minioCertsDir, 'private.key'), fs.readFileSync(f.serverKey, 'utf8'), 0o600);
  writeAtomic(path.join(f.minioCertsDir, 'CAs', 'ca.crt'), fs.readFileSync(f.caCert, 'utf8'), 0o644);
  return { files: f, made: problem !== null };
}
