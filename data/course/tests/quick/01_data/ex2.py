# Written by python -m helpers.course expected from the executed build; do not edit.
test = {'name': 'ex2',
 'points': None,
 'suites': [{'cases': [{'name': 'ex2 share_log_of_mean_larger',
                        'code': '>>> import json\n'
                                '>>> from helpers.course.checks import close\n'
                                '>>> close(share_log_of_mean_larger, '
                                "json.loads('1.0'), (0.0, 0.01))\n"
                                'True',
                        'hidden': False,
                        'points': 1,
                        'locked': False}],
             'scored': True,
             'setup': '',
             'teardown': '',
             'type': 'doctest'}]}
