import { join, resolve } from 'node:path';
import { OPCUACertificateManager } from 'node-opcua';

/**
 * The gateway's OPC UA PKI under `<dataDir>/pki`: own/ (its certificate and key, created on first
 * connect), trusted/ (server certificates the operator accepted), rejected/ (server certificates
 * seen and refused, to be moved to trusted/ by hand). Nothing is trusted automatically.
 */
export function pkiFolder(dataDir: string): string {
  return join(resolve(dataDir), 'pki');
}

export function createCertificateManager(dataDir: string): OPCUACertificateManager {
  return new OPCUACertificateManager({
    rootFolder: pkiFolder(dataDir),
    automaticallyAcceptUnknownCertificate: false,
  });
}
