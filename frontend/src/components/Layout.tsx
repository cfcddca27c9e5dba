import { NavLink, Outlet, useLocation } from 'react-router';
import { NavIcon, type IconName } from './NavIcon';
import { ReadinessIndicator } from './ReadinessIndicator';

export const NAV_ITEMS: { to: string; label: string; icon: IconName }[] = [
  { to: '/', label: 'Overview', icon: 'overview' },
  { to: '/ui', label: 'MLflow UI', icon: 'ui' },
  { to: '/experiments', label: 'Experiments', icon: 'experiments' },
  { to: '/models', label: 'Models', icon: 'models' },
  { to: '/console', label: 'API console', icon: 'console' },
  { to: '/embed', label: 'Embed', icon: 'embed' },
];

export function Layout() {
  const { pathname } = useLocation();
  const fullBleed = pathname === '/ui';
  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <NavLink to="/" className="brand" aria-label="MLflow proxy dashboard home">
          <svg viewBox="0 0 32 32" width="26" height="26" aria-hidden="true">
            <rect width="32" height="32" rx="7" fill="#13263f" />
            <path
              d="M6 22 L12 14 L17 18 L26 8"
              fill="none"
              stroke="#3ec7b4"
              strokeWidth="3"
              strokeLinecap="round"
              strokeLinejoin="round"
            />
          </svg>
          <span className="brand-text">
            MLflow proxy <span className="brand-sub">SageMaker</span>
          </span>
        </NavLink>
        <ReadinessIndicator />
      </header>
      <nav className="sidenav" aria-label="Main">
        <ul>
          {NAV_ITEMS.map((item) => (
            <li key={item.to}>
              <NavLink to={item.to} end={item.to === '/'} className="navlink">
                <span className="navicon">
                  <NavIcon name={item.icon} />
                </span>
                <span>{item.label}</span>
              </NavLink>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" className={fullBleed ? 'content content-full' : 'content'} tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}
