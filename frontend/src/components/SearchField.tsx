/** A labelled search box for a page's toolbar (the Experiments and Models searches). */
export function SearchField({
  id,
  label,
  value,
  onChange,
  placeholder = 'any name',
  grow = false,
}: {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
  placeholder?: string;
  /** Take the toolbar's spare width. */
  grow?: boolean;
}) {
  return (
    <div className={grow ? 'field field-grow' : 'field'}>
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        className="input"
        type="search"
        value={value}
        onChange={(e) => onChange(e.target.value)}
        placeholder={placeholder}
      />
    </div>
  );
}
