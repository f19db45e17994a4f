import http from 'node:http';
import axios, { type AxiosInstance } from 'axios';
import { NO_FULFILLMENT_METRICS, type FulfillmentMetrics } from '../metrics.js';

export interface FulfillmentItem {
  description: string;
  quantity: number;
  orderID: string;
}

export type FulfillmentResult = { ok: true } | { ok: false; reason: 'timeout' | 'failed'; detail: string };

/** The fulfillment service client: PUT /fulfill, one request per line item. Idempotent upstream. */
export class FulfillmentService {
  private readonly http: AxiosInstance | undefined;

  constructor(
    baseUrl: string | undefined,
    timeoutMs: number,
    private readonly metrics: FulfillmentMetrics = NO_FULFILLMENT_METRICS,
  ) {
    this.http = baseUrl
      ? axios.create({
          baseURL: baseUrl.replace(/\/+$/, ''),
          timeout: timeoutMs,
          // Idle sockets closed before the service's keep-alive timeout would close them under us.
          httpAgent: new http.Agent({ keepAlive: true, maxSockets: 8, timeout: 2000 }),
          validateStatus: () => true,
          maxRedirects: 0,
        })
      : undefined;
  }

  async fulfill(item: FulfillmentItem): Promise<FulfillmentResult> {
    if (!this.http) return { ok: false, reason: 'failed', detail: 'FULFILLMENT_SERVICE_URL is not set' };
    const result = await put(this.http, item);
    this.metrics.called(result.ok ? 'succeeded' : result.reason);
    return result;
  }
}

/** One PUT /fulfill, and what it came to. */
async function put(api: AxiosInstance, item: FulfillmentItem): Promise<FulfillmentResult> {
  try {
    const res = await api.put('/fulfill', item);
    if (res.status === 200) return { ok: true };
    return { ok: false, reason: 'failed', detail: `fulfillment service answered ${res.status}` };
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'error';
    if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') return { ok: false, reason: 'timeout', detail: 'no answer before the timeout' };
    return { ok: false, reason: 'failed', detail: `fulfillment service unreachable (${code})` };
  }
}
