pragma solidity ^0.7.0;

interface IERC20 {
    function transfer(address to, uint256 amount) external returns (bool);
}

// A token that blocks one recipient stops the whole distribution.
contract Distributor {
    IERC20 public token;
    address[] public recipients;
    address public owner;

    constructor(IERC20 _token) {
        token = _token;
        owner = msg.sender;
    }

    function add(address who) external {
        require(msg.sender == owner, "owner");
        recipients.push(who);
    }

    function distribute(uint256 amount) external {
        require(msg.sender == owner, "owner");
        for (uint256 i = 0; i < recipients.length; i++) {
            require(token.transfer(recipients[i], amount), "transfer"); // expect: denial-of-service
        }
    }
}
