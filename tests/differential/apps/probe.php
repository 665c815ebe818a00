<?php
// PHP upstream for tests/differential (php-cgi behind nginx FastCGI): what a PHP app reads
// from $_SERVER. Routing from REQUEST_URI with rawurldecode (as Symfony's router does), or
// from X-Original-URL / X-Rewrite-URL (IIS-style rewrites); method override on POST.
$read_names = json_decode(file_get_contents(__DIR__ . '/read-headers.json'));
$var = function ($h) { return 'HTTP_' . strtoupper(str_replace('-', '_', $h)); };
$path = rawurldecode(parse_url('http://x' . $_SERVER['REQUEST_URI'], PHP_URL_PATH) ?? '');
foreach (['X-Original-URL', 'X-Rewrite-URL'] as $h) {
    if (!empty($_SERVER[$var($h)])) { $path = explode('?', $_SERVER[$var($h)])[0]; }
}
$method = $_SERVER['REQUEST_METHOD'];
if ($method === 'POST') {
    foreach (['X-HTTP-Method-Override', 'X-Method-Override', 'X-HTTP-Method'] as $h) {
        if (!empty($_SERVER[$var($h)])) { $method = strtoupper($_SERVER[$var($h)]); break; }
    }
    // Symfony's getMethod() with method override on (Laravel's default): `_method` from
    // $_GET, whose names PHP has decoded and mangled ('.', ' ', '[' read as '_').
    if ($method === 'POST' && isset($_GET['_method']) && is_string($_GET['_method'])) {
        $method = strtoupper($_GET['_method']);
    } elseif ($method === 'POST' && isset($_GET['_method'][0])) {
        $method = strtoupper($_GET['_method'][0]);
    }
}
$host = $_SERVER['HTTP_HOST'] ?? '';
// PROBE_SITE=admin: this instance is the admin site as a whole
if (getenv('PROBE_SITE') === 'admin' || stripos($host, 'admin.') === 0) { $resource = 'admin-host'; }
elseif ($path === '/admin' || strpos($path, '/admin/') === 0) { $resource = 'admin'; }
else { $resource = 'public'; }
$read = new stdClass();
foreach ($read_names as $h) {
    if (isset($_SERVER[$var($h)])) { $read->$h = $_SERVER[$var($h)]; }
}
foreach (['REMOTE_USER', 'PHP_AUTH_USER'] as $k) {
    if (isset($_SERVER[$k]) && $_SERVER[$k] !== '') { $read->$k = $_SERVER[$k]; }
}
header('Content-Type: application/json');
echo json_encode(['server' => 'php', 'resource' => $resource, 'path' => $path,
    'method' => $method, 'host' => $host, 'read' => $read]);
