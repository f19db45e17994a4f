import http from 'node:http';
import axios, { type AxiosInstance } from 'axios';

export interface FulfillmentItem {
  description: string;
  quantity: number;
  orderID: string;
}

export type FulfillmentResult = { ok: true } | { ok: false; reason: 'timeout' | 'failed'; detail: string };

/** The fulfillment service client: PUT /fulfill, one request per line item. Idempotent upstream. */
export class FulfillmentService {
  private readonly http: AxiosInstance | undefined;

  constructor(baseUrl: string | undefined, timeoutMs: number) {
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
    try {
      const res = await this.http.put('/fulfill', item);
      if (res.status === 200) return { ok: true };
      return { ok: false, reason: 'failed', detail: `fulfillment service answered ${res.status}` };
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'error';
      if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') return { ok: false, reason: 'timeout', detail: 'no answer before the timeout' };
      return { ok: false, reason: 'failed', detail: `fulfillment service unreachable (${code})` };
    }
  }
}
