// TLSSigAPIv2 UserSig (SPEC §7) for the benchmark's logins, as an application backend makes it.
import crypto from 'node:crypto';
import zlib from 'node:zlib';

export function userSig(key, sdkAppID, userID, expire = 86400) {
  const time = Math.floor(Date.now() / 1000);
  const text = `TLS.identifier:${userID}\nTLS.sdkappid:${sdkAppID}\nTLS.time:${time}\nTLS.expire:${expire}\n`;
  const sig = crypto.createHmac('sha256', key).update(text).digest('base64');
  const json = JSON.stringify({
    'TLS.ver': '2.0', 'TLS.identifier': userID, 'TLS.sdkappid': sdkAppID,
    'TLS.expire': expire, 'TLS.time': time, 'TLS.sig': sig,
  });
  return zlib.deflateSync(json).toString('base64').replace(/\+/g, '*').replace(/\//g, '-').replace(/=/g, '_');
}
