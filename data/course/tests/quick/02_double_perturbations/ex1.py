# Written by python -m helpers.course expected from the executed build; do not edit.
test = {'name': 'ex1',
 'points': None,
 'suites': [{'cases': [{'name': 'ex1 max_difference',
                        'code': '>>> import json\n'
                                '>>> from helpers.course.checks import close\n'
                                ">>> close(max_difference, json.loads('0.0'), (0.0, "
                                '1e-06))\n'
                                'True',
                        'hidden': False,
                        'points': 1,
                        'locked': False}],
             'scored': True,
             'setup': '',
             'teardown': '',
             'type': 'doctest'}]}
