export type IconName = 'overview' | 'ui' | 'experiments' | 'models' | 'console' | 'embed';

const PATHS: Record<IconName, string> = {
  overview: 'M3 3h7v7H3zM14 3h7v4h-7zM14 11h7v10h-7zM3 14h7v7H3z',
  ui: 'M3 4h18v16H3zM3 8h18M6 6h.01M9 6h.01',
  experiments: 'M9 3h6M10 3v6l-5.5 9.5A1.7 1.7 0 0 0 6 21h12a1.7 1.7 0 0 0 1.5-2.5L14 9V3M7.5 15h9',
  models: 'M12 2l9 5v10l-9 5-9-5V7zM12 22V12M21 7l-9 5-9-5',
  console: 'M3 4h18v16H3zM7 9l3 3-3 3M12 15h5',
  embed: 'M8 7l-5 5 5 5M16 7l5 5-5 5M14 4l-4 16',
};

/** A 16px stroke icon for the navigation. */
export function NavIcon({ name }: { name: IconName }) {
  return (
    <svg
      viewBox="0 0 24 24"
      width="16"
      height="16"
      fill="none"
      stroke="currentColor"
      strokeWidth="2"
      strokeLinecap="round"
      strokeLinejoin="round"
      aria-hidden="true"
      focusable="false"
    >
      <path d={PATHS[name]} />
    </svg>
  );
}
