"""The WebShop browser mode: the shop as an HTML site (aiohttp) driven through Playwright and chromium."""
