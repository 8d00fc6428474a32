/**
 * Material for private nats-servers with security on, all made at test time: a throwaway PKI
 * (openssl: a CA, a server certificate for 127.0.0.1, a client certificate, and an unrelated CA),
 * nkey users, and a decentralized-auth trust chain (operator, account and user JWTs signed with
 * the official @nats-io/jwt library, users handed out as `.creds` files). `natsServerConfig`
 * writes the nats-server configuration that uses them; `startOwnNatsServer({ config })` runs it.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { createAccount, createOperator, createUser, encodeAccount, encodeOperator, encodeUser, fmtCreds, type KeyPair } from '@nats-io/jwt';
import { makeTempDir } from './xenopsd.js';

const run = promisify(execFile);

export interface TestPki {
  /** The CA that signed the server and client certificates. */
  readonly caFile: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A CA that signed nothing here: verifying the server with it fails. */
  readonly otherCaFile: string;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

/** EC P-256 keys (fast to make), certificates valid for two days. */
export async function makeTestPki(): Promise<TestPki> {
  const dir = await makeTempDir('xpki');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = async (name: string) => openssl(dir, ['req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=xenops test ${name}`]);
  await Promise.all([ca('ca'), ca('other-ca')]);
  const leaf = async (name: string, cn: string, ext: string, serial: number) => {
    await writeFile(path.join(dir, `${name}.ext`), ext);
    await openssl(dir, ['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial), '-days', '2', '-out', `${name}.pem`, '-extfile', `${name}.ext`]);
  };
  await Promise.all([
    leaf('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n', 2),
    leaf('client', 'xenops-client', 'extendedKeyUsage=clientAuth\n', 3),
  ]);
  const f = (name: string) => path.join(dir, name);
  return {
    caFile: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
    otherCaFile: f('other-ca.pem'),
  };
}

export interface NkeyUser {
  readonly publicKey: string;
  /** A file holding the user's seed, as `--nats-nkey` takes it. */
  readonly seedFile: string;
}

export async function makeNkeyUser(tag = 'user'): Promise<NkeyUser> {
  const kp = createUser();
  const dir = await makeTempDir('xnk');
  const seedFile = path.join(dir, `${tag}.nk`);
  await writeFile(seedFile, `${new TextDecoder().decode(kp.getSeed())}\n`, { mode: 0o600 });
  return { publicKey: kp.getPublicKey(), seedFile };
}

/** A user's allow lists; absent: everything allowed. */
export interface UserPermissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  readonly allowResponses?: boolean;
}

/** The trust chain of decentralized JWT authentication, with one account that has JetStream. */
export interface JwtAuthority {
  readonly operatorJwt: string;
  readonly systemAccount: string;
  /** Account public key → account JWT, for `resolver_preload`. */
  readonly preload: Readonly<Record<string, string>>;
  /**
   * A `.creds` file for a new user of the account. `expiresInSec` < 0 makes one that has already
   * expired; `signedByOtherAccount` one whose JWT the server cannot trust.
   */
  userCreds(tag: string, perms?: UserPermissions, opts?: { expiresInSec?: number; signedByOtherAccount?: boolean }): Promise<string>;
}

const UNLIMITED_ACCOUNT = {
  limits: { subs: -1, conn: -1, leaf: -1, imports: -1, exports: -1, data: -1, payload: -1, wildcards: true },
};
const JETSTREAM = { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 };

export async function makeJwtAuthority(): Promise<JwtAuthority> {
  const operator = createOperator();
  const system = createAccount();
  const account = createAccount();
  const stranger = createAccount(); // signs users the server knows nothing of
  const operatorJwt = await encodeOperator('xenops-test', operator, { system_account: system.getPublicKey() });
  const preload = {
    [system.getPublicKey()]: await encodeAccount('SYS', system, UNLIMITED_ACCOUNT, { signer: operator }),
    [account.getPublicKey()]: await encodeAccount('XENOPS', account, { limits: { ...UNLIMITED_ACCOUNT.limits, ...JETSTREAM } }, { signer: operator }),
  };
  const dir = await makeTempDir('xjwt');
  return {
    operatorJwt,
    systemAccount: system.getPublicKey(),
    preload,
    async userCreds(tag, perms, opts = {}) {
      const user: KeyPair = createUser();
      const claims = perms
        ? {
            pub: { allow: [...perms.publish] },
            sub: { allow: [...perms.subscribe] },
            ...(perms.allowResponses ? { resp: { max: 1, ttl: 0 } } : {}),
          }
        : {};
      const exp = opts.expiresInSec !== undefined ? { exp: Math.floor(Date.now() / 1000) + opts.expiresInSec } : {};
      const jwt = await encodeUser(tag, user, opts.signedByOtherAccount ? stranger : account, claims, exp);
      const file = path.join(dir, `${tag}.creds`);
      await writeFile(file, fmtCreds(jwt, user), { mode: 0o600 });
      return file;
    },
  };
}

export interface NatsServerSecurity {
  /** TLS with the PKI's server certificate; `verifyClients` asks every client for a certificate. */
  readonly tls?: { readonly pki: TestPki; readonly verifyClients?: boolean };
  /** nkey users (no `permissions`: allowed everything). */
  readonly nkeyUsers?: ReadonlyArray<{ readonly nkey: string; readonly permissions?: UserPermissions | string }>;
  /** Decentralized JWT authentication instead of `nkeyUsers`. */
  readonly jwt?: JwtAuthority;
}

/**
 * A nats-server configuration for `port` and `storeDir` with `security`. A string permission is
 * used verbatim (e.g. the block `xenopsd --nats-permissions` prints).
 */
export function natsServerConfig(port: number, storeDir: string, security: NatsServerSecurity): string {
  const q = (s: string) => JSON.stringify(s);
  const lines = [`listen: "127.0.0.1:${port}"`, `jetstream { store_dir: ${q(storeDir)} }`];
  if (security.tls) {
    const { pki, verifyClients } = security.tls;
    lines.push(
      `tls { cert_file: ${q(pki.serverCert)}, key_file: ${q(pki.serverKey)}, ca_file: ${q(pki.caFile)}, verify: ${verifyClients === true}, timeout: 2 }`,
    );
  }
  if (security.nkeyUsers) {
    const users = security.nkeyUsers.map(({ nkey, permissions }) => {
      if (permissions === undefined) return `  { nkey: ${q(nkey)} }`;
      const block = typeof permissions === 'string' ? permissions : permissionsBlock(permissions);
      return `  {\n  nkey: ${q(nkey)}\n  ${block.trim().replace(/\n/g, '\n  ')}\n  }`;
    });
    lines.push(`authorization {\n users = [\n${users.join('\n')}\n ]\n}`);
  }
  if (security.jwt) {
    const { jwt } = security;
    lines.push(`operator: ${q(jwt.operatorJwt)}`, `system_account: ${q(jwt.systemAccount)}`, 'resolver: MEMORY');
    lines.push(`resolver_preload: {\n${Object.entries(jwt.preload).map(([k, v]) => `  ${k}: ${q(v)}`).join('\n')}\n}`);
  }
  return `${lines.join('\n')}\n`;
}

function permissionsBlock(p: UserPermissions): string {
  const list = (xs: readonly string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
  return `permissions: { publish: { allow: ${list(p.publish)} }, subscribe: { allow: ${list(p.subscribe)} }${p.allowResponses ? ', allow_responses: true' : ''} }`;
}
