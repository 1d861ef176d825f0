/** Cognito's JSON protocol over fetch (no SDK): GetUser needs only the user's access token. */
export class CognitoError extends Error {
  readonly type: string;
  readonly status: number;
  constructor(type: string, message: string, status: number) {
    super(`${type}: ${message}`);
    this.name = 'CognitoError';
    this.type = type;
    this.status = status;
  }
}

/** One call of Cognito's JSON API (`AWSCognitoIdentityProviderService.<action>`). */
export async function cognitoCall<T = Record<string, unknown>>(
  endpoint: string,
  action: string,
  body: Record<string, unknown>,
  opts: { signal?: AbortSignal } = {},
): Promise<T> {
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `AWSCognitoIdentityProviderService.${action}`,
    },
    body: JSON.stringify(body),
    signal: opts.signal ?? AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  const json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (!res.ok) {
    const type = String(json.__type ?? json.code ?? 'CognitoError')
      .split('#')
      .pop()!;
    throw new CognitoError(type, String(json.message ?? json.Message ?? res.statusText), res.status);
  }
  return json as T;
}
