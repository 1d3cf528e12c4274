// @peculiar/x509 uses tsyringe, which needs the Reflect metadata API loaded first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(globalThis.crypto);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const validity = { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 365 * 24 * 3600_000) };

export interface KeyPairPem {
  certificate: string;
  privateKey: string;
}

export interface ControlPlanePki {
  ca: KeyPairPem;
  apiServer: KeyPairPem;
  admin: KeyPairPem;
  serviceAccount: { publicKey: string; privateKey: string };
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function publicKeyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('spki', key), 'PUBLIC KEY');
}

let serial = Date.now();
const nextSerial = () => (serial++).toString(16).padStart(16, '0');

async function issue(
  ca: { certificate: x509.X509Certificate; keys: CryptoKeyPair },
  subject: string,
  extensions: x509.Extension[],
): Promise<KeyPairPem> {
  const keys = await generateKeys();
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject,
    issuer: ca.certificate.subject,
    ...validity,
    signingKey: ca.keys.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
      ...extensions,
    ],
  });
  return { certificate: certificate.toString('pem'), privateKey: await privateKeyPem(keys.privateKey) };
}

/**
 * A throw-away CA with a serving certificate for kube-apiserver on loopback, an admin client
 * certificate (group system:masters) and the service-account signing key pair.
 */
export async function createControlPlanePki(): Promise<ControlPlanePki> {
  const caKeys = await generateKeys();
  const caCertificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: 'CN=kublambda-dev-ca',
    ...validity,
    keys: caKeys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const ca = { certificate: caCertificate, keys: caKeys };
  const apiServer = await issue(ca, 'CN=kube-apiserver', [
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    new x509.SubjectAlternativeNameExtension([
      { type: 'ip', value: '127.0.0.1' },
      { type: 'dns', value: 'localhost' },
      { type: 'dns', value: 'kubernetes.default.svc' },
    ]),
  ]);
  const admin = await issue(ca, 'CN=kublambda-admin, O=system:masters', [
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
  ]);
  const serviceAccountKeys = await generateKeys();
  return {
    ca: { certificate: caCertificate.toString('pem'), privateKey: await privateKeyPem(caKeys.privateKey) },
    apiServer,
    admin,
    serviceAccount: {
      publicKey: await publicKeyPem(serviceAccountKeys.publicKey),
      privateKey: await privateKeyPem(serviceAccountKeys.privateKey),
    },
  };
}
