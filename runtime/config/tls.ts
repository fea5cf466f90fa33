/**
 * Reads and checks the files named by a component's `tls` options (see `tlsSchema` in types.ts) when
 * the component is created, so `validate` reports a missing or malformed CA / certificate / key as a
 * config problem (exit 2) instead of the first TLS handshake failing at run time.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { ConfigError, errorMessage } from '../errors.ts';
import type { ComponentSettings } from '../component.ts';
import type { TlsConfig } from './types.ts';

/** TLS material ready for undici's `connect` options. */
export interface TlsMaterial {
  rejectUnauthorized: boolean;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
}

const KIND_PLURAL = {
  receiver: 'receivers',
  processor: 'processors',
  exporter: 'exporters',
  extension: 'extensions',
};

/**
 * Loads `tls.ca_file`, `tls.cert_file`, `tls.key_file` (relative to the config folder) and checks that
 * they are PEM that Node's TLS stack accepts. Throws a ConfigError naming `<kind>s.<id>.tls.<key>`.
 */
export async function loadTlsMaterial(settings: ComponentSettings, tls: TlsConfig): Promise<TlsMaterial> {
  const base = `${KIND_PLURAL[settings.kind]}.${settings.id}.tls`;
  const read = async (key: 'ca_file' | 'cert_file' | 'key_file'): Promise<Buffer | undefined> => {
    const file = tls[key];
    if (file === undefined) return undefined;
    const path = resolve(settings.configDir, file);
    try {
      return await readFile(path);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? errorMessage(err);
      throw new ConfigError([{ path: `${base}.${key}`, message: `cannot read ${path}: ${reason}` }]);
    }
  };
  const [ca, cert, key] = await Promise.all([read('ca_file'), read('cert_file'), read('key_file')]);
  const check = (what: 'ca_file' | 'cert_file', opts: Parameters<typeof createSecureContext>[0]) => {
    try {
      createSecureContext(opts);
    } catch (err) {
      throw new ConfigError([
        {
          path: `${base}.${what}`,
          message: `${tls[what]} is not a usable PEM ${what === 'ca_file' ? 'CA certificate' : 'certificate/key pair'}: ${errorMessage(err)}`,
        },
      ]);
    }
  };
  if (ca) {
    if (!ca.toString('utf8').includes('-----BEGIN CERTIFICATE-----')) {
      throw new ConfigError([
        { path: `${base}.ca_file`, message: `${tls.ca_file} contains no PEM certificate` },
      ]);
    }
    check('ca_file', { ca });
  }
  if (cert && key) check('cert_file', { cert, key });
  const material: TlsMaterial = { rejectUnauthorized: !tls.insecure_skip_verify };
  if (ca) material.ca = ca;
  if (cert) material.cert = cert;
  if (key) material.key = key;
  if (tls.server_name !== undefined) material.servername = tls.server_name;
  return material;
}
