import { countdown, formatDateTime } from '../lib/format';
import { useNow } from '../lib/useNow';

/** Live "in 14m 03s" until an RFC 3339 instant, warning in the last 5 minutes. */
export function Countdown({ expiresAt }: { expiresAt: string }) {
  const now = useNow(1000);
  const c = countdown(expiresAt, now);
  if (!c) return <span className="muted">{expiresAt}</span>;
  const cls = c.expired ? 'countdown expired' : c.secondsLeft < 300 ? 'countdown soon' : 'countdown';
  return (
    <span className={cls} title={formatDateTime(Date.parse(expiresAt))}>
      <time dateTime={expiresAt}>{c.text}</time>
    </span>
  );
}
