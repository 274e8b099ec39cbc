import { UserTokenType, type UserIdentityInfo } from 'node-opcua';
import { keyOperationsFromPrivateKey, readCertificate, readPrivateKey } from 'node-opcua-crypto';
import type { OpcuaEndpointConfig } from './schema.js';

export type OpcuaAuth = OpcuaEndpointConfig['auth'];

/** The user token for a sign-in; certificate files are read on every call (renewed ones are taken up). */
export function identityOf(auth: OpcuaAuth): UserIdentityInfo {
  if (auth.type === 'username')
    return { type: UserTokenType.UserName, userName: auth.username, password: auth.password };
  if (auth.type === 'certificate')
    return {
      type: UserTokenType.Certificate,
      certificateData: readFile('certificate', auth.certificateFile, readCertificate),
      // Key operations rather than the PEM text, which node-opcua deprecates (NODE-OPCUA-W37).
      keyOperations: keyOperationsFromPrivateKey(
        readFile('private key', auth.privateKeyFile, readPrivateKey),
      ),
    };
  return { type: UserTokenType.Anonymous };
}

function readFile<T>(what: string, file: string, read: (f: string) => T): T {
  try {
    return read(file);
  } catch (err) {
    throw new Error(`cannot read the user ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Status codes with which a server refuses the user rather than the connection. */
const SIGN_IN_REFUSED =
  /BadUserAccessDenied|BadIdentityTokenRejected|BadIdentityTokenInvalid|BadUserSignatureInvalid|BadCertificate/;

/** A refused sign-in says who was refused, so the operator knows which setting to fix. */
export function signInError(err: Error, auth: OpcuaAuth): Error {
  if (!SIGN_IN_REFUSED.test(err.message)) return err;
  const who =
    auth.type === 'username'
      ? `user name "${auth.username}" (check the password)`
      : auth.type === 'certificate'
        ? `user certificate ${auth.certificateFile} (the server must trust it)`
        : 'anonymous sign-in (the server may require a user)';
  return new Error(`sign-in refused by the server for ${who}: ${err.message}`, { cause: err });
}
