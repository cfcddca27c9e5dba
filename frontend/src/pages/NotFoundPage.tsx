import { Link, useLocation } from 'react-router';
import { PageHeader } from '../components/PageHeader';

export function NotFoundPage() {
  const { pathname } = useLocation();
  return (
    <>
      <PageHeader title="Page not found" />
      <div className="card card-body">
        <p>
          There is no dashboard page at <code>{pathname}</code>.
        </p>
        <p>
          <Link to="/">Go to the overview</Link> or open the <Link to="/ui">MLflow UI</Link>.
        </p>
      </div>
    </>
  );
}
