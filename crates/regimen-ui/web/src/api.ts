// The JSON API (documented at /api/openapi.json), with the token when the server asks for one.

const TOKEN_KEY = 'regimen-token';

/** Takes `?token=` from the address once, keeps it for this tab, and removes it from the bar. */
export function adoptToken(): void {
  const params = new URLSearchParams(location.search);
  const token = params.get('token');
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

/** An error the server explained. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function check(response: Response): Promise<Response> {
  if (response.ok) return response;
  let message = `${response.status} ${response.statusText}`;
  try {
    message = (await response.json()).error ?? message;
  } catch {
    // Not JSON: keep the status line.
  }
  throw new ApiError(response.status, message);
}

/** GET a JSON document. */
export async function get<T>(path: string, signal?: AbortSignal): Promise<T> {
  const response = await check(await fetch(path, { headers: headers(), signal }));
  return (await response.json()) as T;
}

/** POST a JSON body. */
export async function post(path: string, body: unknown): Promise<void> {
  await check(
    await fetch(path, {
      method: 'POST',
      headers: headers({ 'Content-Type': 'application/json' }),
      body: JSON.stringify(body),
    }),
  );
}

/** Downloads a file through fetch (so that the token goes with it) and saves it as `name`. */
export async function download(path: string, name: string): Promise<void> {
  const response = await check(await fetch(path, { headers: headers() }));
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A file fetched with the token, as an object URL for an <img> (the page's CSP allows blob:). */
export async function objectUrl(path: string): Promise<string> {
  const response = await check(await fetch(path, { headers: headers() }));
  return URL.createObjectURL(await response.blob());
}

/** Reads server-sent events with fetch (EventSource cannot send the token), reconnecting with
 *  `Last-Event-ID` after a dropped connection until `stop` aborts or an `end` event arrives. */
export function events(
  path: string,
  onEvent: (name: string, data: string) => void,
  stop: AbortSignal,
): void {
  let lastId: string | null = null;
  const connect = async () => {
    while (!stop.aborted) {
      try {
        const extra: Record<string, string> = lastId ? { 'Last-Event-ID': lastId } : {};
        const response = await check(await fetch(path, { headers: headers(extra), signal: stop }));
        const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let name = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) name = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
              else if (line.startsWith('id:')) lastId = line.slice(3).trim() || lastId;
            }
            if (data.length) onEvent(name, data.join('\n'));
            if (name === 'end') return;
          }
        }
      } catch (problem) {
        if (stop.aborted || (problem instanceof ApiError && problem.status < 500)) return;
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  };
  void connect();
}

export interface Summary {
  best: number | null;
  best_step: number | null;
  best_epoch: number | null;
  last: number | null;
  last_step: number;
  count: number;
  min: number | null;
  max: number | null;
}

export interface Run {
  run_id: string;
  name: string;
  experiment: string;
  dataset: string | null;
  status: string;
  reason: string | null;
  started_at: string;
  ended_at: string | null;
  monitor: { metric: string; mode: string } | null;
  params: Record<string, number | string>;
  metrics: Record<string, Summary>;
  tags: Record<string, string>;
}

export interface RunsPage {
  total: number;
  offset: number;
  runs: Run[];
  groups?: { value: string; count: number }[];
}

export interface Series {
  key: string;
  x: string;
  from: number;
  to: number;
  total: number;
  points: [number, number | null][];
  bands: [number, number, number, number][];
  smoothed?: [number, number | null][];
}
